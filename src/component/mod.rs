//! The `Client` component.
