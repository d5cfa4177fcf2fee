//! wengert-nn (in progress)
