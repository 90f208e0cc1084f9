//! The parts of the hostile-memory benchmark: raw client sockets and frames ([`net`]), the
//! attack patterns ([`patterns`]), the measured healthy pair ([`healthy`]) and the server
//! process it watches ([`server`]).

pub mod healthy;
pub mod net;
pub mod patterns;
pub mod server;
