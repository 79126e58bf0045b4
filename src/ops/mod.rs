//! Operating an instance: backups and restores in one portable archive
//! format, moving between database back ends, `tocsin doctor`, and the
//! upkeep `tocsin serve` runs every hour.

pub mod backup;
pub mod doctor;
pub mod maintenance;
