// etcd for the test cluster: the upstream etcd binary's main (go.etcd.io/etcd/v3's main.go
// calls the same function), built from the server module alone so that no replace
// directives are needed.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
