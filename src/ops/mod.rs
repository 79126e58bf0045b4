//! Operating an instance: backups and restores in one portable archive
//! format, moving between database back ends, and `tocsin doctor`.

pub mod backup;
pub mod doctor;
