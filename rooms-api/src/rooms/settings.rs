//! The settings that shape rooms (docs/spec/operations.md), read by `config.rs` and handed to
//! the service; the service never reads the process configuration itself.

use super::model::AccessLevel;

/// Room-shaping settings, handed to the rooms service.
#[derive(Debug, Clone)]
pub struct RoomSettings {
    pub public_url: String,
    pub base_url: Option<String>,
    pub default_access_level: AccessLevel,
    pub allow_public_access: bool,
    pub telephony_enabled: bool,
    pub telephony_phone_number: Option<String>,
    pub telephony_default_country: String,
    pub pin_length: usize,
}
