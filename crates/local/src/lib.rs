//! `kubetrain local`: the gateway's REST API on one machine. Runs live in SQLite and train in
//! local `kubetrain train` processes started exactly as the Kubernetes Job starts them.
