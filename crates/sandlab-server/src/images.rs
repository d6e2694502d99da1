//! The images the playground offers (`GET /api/v1/images`). Where they come from is the
//! composition root's choice: the local image store on a single host, a fixed list where
//! a driver takes registry references.

use sandlab_image::{ImageInfo, ImageStore};

/// Lists the images sandboxes can be created from.
pub trait ImageCatalog: Send + Sync + 'static {
    fn list(&self) -> Result<Vec<ImageInfo>, sandlab_image::Error>;
}

impl ImageCatalog for ImageStore {
    fn list(&self) -> Result<Vec<ImageInfo>, sandlab_image::Error> {
        // A read of the small refs directory: quick enough for a runtime thread.
        ImageStore::list(self)
    }
}

/// A fixed list of images.
pub struct FixedImages(pub Vec<ImageInfo>);

impl ImageCatalog for FixedImages {
    fn list(&self) -> Result<Vec<ImageInfo>, sandlab_image::Error> {
        Ok(self.0.clone())
    }
}
