//! The HTTP routes. Handlers are thin: extract, call one service method, shape the answer.

pub(crate) mod ops;
