//! The 1C Native API boundary.
