//! The image store's errors: one sentence each, naming the image, blob or file.

use std::io;
use std::path::PathBuf;

use crate::unpack::UnpackError;

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the image store can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Image \"{0}\" does not exist; build it with `sandlab image build {0}` or import one")]
    NotFound(String),

    #[error("Image name \"{0}\" is invalid; use 1 to 64 of a-z, 0-9, '.', '_' and '-', starting with a letter or digit")]
    InvalidName(String),

    #[error("Image \"{0}\" is in use by a mounted sandbox root; remove its sandboxes first")]
    InUse(String),

    #[error("Image id map {host}+{size} does not fit in the 32-bit id space")]
    InvalidIdMap { host: u32, size: u32 },

    #[error("Image \"{name}\" is damaged: {reason}")]
    Damaged { name: String, reason: String },

    #[error(transparent)]
    Unpack(#[from] UnpackError),

    #[error("Blob {expected} does not match its content (got {actual})")]
    DigestMismatch { expected: String, actual: String },

    #[error("Digest \"{0}\" is not a sha256 digest")]
    InvalidDigest(String),

    #[error("Blob {0} is missing")]
    MissingBlob(String),

    #[error("Archive {file} is not an OCI image layout or `docker save` tar: {reason}")]
    InvalidArchive { file: PathBuf, reason: String },

    #[error("Manifest {digest} is invalid: {reason}")]
    InvalidManifest { digest: String, reason: String },

    #[error("Image config {digest} is invalid")]
    InvalidConfig {
        digest: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("Image {0} has no manifest for linux/{arch}", arch = crate::oci::host_arch())]
    NoMatchingPlatform(String),

    #[cfg(feature = "registry")]
    #[error("Image reference \"{reference}\" is invalid")]
    InvalidReference {
        reference: String,
        #[source]
        source: oci_client::ParseError,
    },

    #[cfg(feature = "registry")]
    #[error("Cannot pull {reference} from its registry")]
    Registry {
        reference: String,
        #[source]
        source: oci_client::errors::OciDistributionError,
    },

    #[error("Blob {digest} is {size} bytes, more than the {max} allowed")]
    BlobTooLarge { digest: String, size: u64, max: u64 },

    #[error("Debian suite \"{0}\" is invalid")]
    InvalidSuite(String),

    #[error("Image recipe {file}: {message}")]
    Recipe { file: String, message: String },

    #[error("The recipe \"{0}\" copies files from a build context; pass --context DIR or set SANDLAB_IMAGE_CONTEXT")]
    NoContext(String),

    #[error("{0} is missing from the build context")]
    NotInContext(PathBuf),

    #[error("{path} resolves outside the build context {context}")]
    OutsideContext { path: PathBuf, context: PathBuf },

    #[error("{path} in the build context {reason}")]
    ContextFile { path: PathBuf, reason: &'static str },

    #[error("Debian mirror \"{0}\" is invalid")]
    InvalidMirror(String),

    #[error("Debian package name \"{0}\" is invalid")]
    InvalidPackage(String),

    #[error("Cannot run mmdebstrap; install it with `apt-get install mmdebstrap`")]
    MmdebstrapSpawn(#[source] io::Error),

    #[error("mmdebstrap failed for suite {suite} ({status}); its last lines: {tail}")]
    MmdebstrapFailed {
        suite: String,
        status: String,
        tail: String,
    },

    #[error("Cannot {action}")]
    Io {
        action: String,
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// Wraps an I/O error with what was being done ("write blob sha256:..").
    pub(crate) fn io(action: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
        let action = action.into();
        move |source| Error::Io { action, source }
    }
}
