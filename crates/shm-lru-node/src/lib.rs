//! Node-API addon (work in progress).
