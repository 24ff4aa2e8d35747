//! The channels an application arrives by.

use serde::{Deserialize, Serialize};

/// Where a decision came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Channel {
    Online,
    OfflineSync,
    Batch,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Online, Channel::OfflineSync, Channel::Batch];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Online => "online",
            Channel::OfflineSync => "offline-sync",
            Channel::Batch => "batch",
        }
    }

    pub fn parse(text: &str) -> Option<Channel> {
        match text {
            "online" => Some(Channel::Online),
            "offline-sync" => Some(Channel::OfflineSync),
            "batch" => Some(Channel::Batch),
            _ => None,
        }
    }
}
