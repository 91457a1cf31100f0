//! corral used as a hostile operator would (issue "trust under abuse"): storms, broken
//! pipes, idle and greedy clients, absurd input. Each test here failed before its fix.

mod ctl;
mod storm;
