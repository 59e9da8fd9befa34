//! The TrainingRun custom resource.
