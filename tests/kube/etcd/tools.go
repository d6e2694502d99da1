//go:build tools

// The etcd commands scripts/kube.sh builds besides etcd itself (a cluster playground's
// node has them for `etcdctl snapshot save` and `etcdutl snapshot restore`), so that
// `go mod tidy` keeps what they need.
package main

import (
	_ "go.etcd.io/etcd/etcdctl/v3"
	_ "go.etcd.io/etcd/etcdutl/v3"
)
