//! The write-ahead log (being written; see the module's owner).
