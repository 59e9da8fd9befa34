//! Storage I/O from the trainer's synchronous code.

use std::future::Future;

use crate::error::TrainError;

/// Run an async storage operation to completion from synchronous code.
///
/// The future runs on a fresh single-threaded runtime in a scoped thread, so this works both
/// from plain threads and from inside another Tokio runtime (where a nested `block_on` would
/// panic). Storage I/O is a handful of large requests, so the extra thread costs nothing.
pub fn block_on<T: Send>(
    future: impl Future<Output = Result<T, TrainError>> + Send,
) -> Result<T, TrainError> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| TrainError::Internal(format!("cannot start an I/O runtime: {e}")))?
                    .block_on(future)
            })
            .join()
            .unwrap_or_else(|_| Err(TrainError::Internal("the I/O thread panicked".into())))
    })
}
