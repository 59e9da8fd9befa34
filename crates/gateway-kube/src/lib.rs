//! The gateway's Kubernetes backend: every run is a TrainingRun object, reads come from a
//! watch cache, and callers are authenticated with TokenReview and authorized with
//! SubjectAccessReview.
