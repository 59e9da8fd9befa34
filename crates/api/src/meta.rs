//! Object metadata as kubetrain keeps it in memory.

use kube::Resource;

/// Drop what only the API server needs from `object`'s metadata before it is cached or
/// returned: `managedFields` and kubectl's `last-applied-configuration` annotation (together
/// often larger than the rest of a run).
pub fn strip_managed_fields<K: Resource>(object: &mut K) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}
