//! vtest front end (being written).
