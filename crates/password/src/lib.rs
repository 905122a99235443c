//! Password schemes.
