//! Is this node on Azure? There gratuitous ARP moves no traffic: an internal load balancer
//! with a health probe must follow the active node instead.

/// `Some(true)` only for a confident Azure verdict from `lkh-platform`'s detector (DMI,
/// VMBus, and Azure's metadata service, at most about a second of network probing).
pub fn on_azure() -> Option<bool> {
    lkh_platform::is_azure()
}
