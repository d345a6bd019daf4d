//! Unit tests. They build fake hosts and roots in temp dirs (and read a few
//! real files of this host); none mocks the code under test. Tests that set
//! owners or make device nodes need root and skip loudly without it.

mod confine;
mod copy;
mod ops;
mod plan;
mod util;
