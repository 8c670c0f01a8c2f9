//! The configuration's `[[destinations]]`: where released results are sent.
//!
//! ```toml
//! [[destinations]]
//! kind = "hl7v2"
//! name = "lis"                  # optional; default "hl7v2-1", "hl7v2-2", …
//! address = "lis.example:2575"  # host:port of the LIS's MLLP listener
//! receiving_application = "LIS" # MSH-5 (optional)
//! receiving_facility = "HOSP"   # MSH-6 (optional)
//! sending_facility = "ONCLAB"   # MSH-4, this lab as the LIS knows it (optional)
//! mrn_authority = "HOSP"        # PID-3.4, who assigns the MRNs (optional)
//! timeout_ms = 10000            # connect, then acknowledgement, each (optional)
//! tls = true                    # MLLP over TLS (optional, default false)
//! ca_file = "/etc/ferrocount/lis-ca.pem" # the CA(s) the LIS's certificate is checked against
//! server_name = "lis.example"   # the name its certificate must carry (default: the host)
//!
//! [[destinations]]
//! kind = "fhir"
//! base_url = "https://fhir.example/r4"          # the transaction is posted here
//! token_file = "/etc/ferrocount/fhir-token"     # the bearer token (never in this file)
//! ca_file = "/etc/ferrocount/hospital-ca.pem"   # optional: trust this CA instead of the system's
//! mrn_system = "urn:oid:2.16.840.1.113883.3.1"  # optional: the hospital's MRN identifier system
//! timeout_ms = 30000                            # optional: one attempt at most this long
//! ```
//!
//! Checked when the configuration is loaded ([`check`]): names unique, an address `host:port`
//! with a port, with `tls = true` a readable `ca_file` of PEM certificates and a server name
//! that is a DNS name or IP address (no `ca_file` or `server_name` without `tls`), a FHIR base
//! URL over https (no plain http, not even to this machine), a token file and a CA file that
//! exist.
//!
//! An HL7 v2 destination without TLS that is not on this machine is allowed but warned about at
//! start ([`DestinationConfig::plain_text_off_machine`]): many laboratory systems take MLLP only
//! as plain TCP on a closed network or behind a tunnel the site runs, and refusing it would
//! leave results on the appliance; the warning names the destination so that the site can
//! decide. What it is not for: sending (the operations layer's outbox sender).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::interop::mllp;
use crate::store::outbox::{MessageFormat, OutboxTarget};

/// One `[[destinations]]` table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", deny_unknown_fields)]
pub enum DestinationConfig {
    /// HL7 v2.5.1 ORU^R01 over MLLP.
    #[serde(rename = "hl7v2")]
    Hl7v2 {
        /// The destination's name (outbox rows, the outbox page).
        #[serde(default)]
        name: Option<String>,
        /// `host:port` of the MLLP listener.
        address: String,
        /// MSH-5.
        #[serde(default)]
        receiving_application: String,
        /// MSH-6.
        #[serde(default)]
        receiving_facility: String,
        /// MSH-4.
        #[serde(default)]
        sending_facility: String,
        /// PID-3.4.
        #[serde(default)]
        mrn_authority: String,
        /// Connect, then acknowledgement, each at most this long.
        #[serde(default = "default_timeout_ms")]
        timeout_ms: u64,
        /// MLLP over TLS.
        #[serde(default)]
        tls: bool,
        /// With `tls`: the PEM file of the CA certificate(s) the receiver's certificate is
        /// checked against (only these are trusted).
        #[serde(default)]
        ca_file: Option<PathBuf>,
        /// With `tls`: the name the receiver's certificate must carry (default: the address's
        /// host).
        #[serde(default)]
        server_name: Option<String>,
    },
    /// HL7 FHIR R4 over REST.
    #[serde(rename = "fhir")]
    Fhir {
        /// The destination's name.
        #[serde(default)]
        name: Option<String>,
        /// The FHIR server's base URL.
        base_url: String,
        /// A file holding the bearer token (the token itself is never configured).
        token_file: PathBuf,
        /// The hospital's CA certificate(s), PEM: trusted instead of the system's roots.
        #[serde(default)]
        ca_file: Option<PathBuf>,
        /// The identifier system of the MRNs (the hospital's; matched by the FHIR server).
        #[serde(default = "default_mrn_system")]
        mrn_system: String,
        /// One attempt (connect, send, answer) at most this long.
        #[serde(default = "default_fhir_timeout_ms")]
        timeout_ms: u64,
    },
}

/// The MRN identifier system when a FHIR destination names none (and of the appliance's own
/// `/fhir` view): set the hospital's, or its server will not find the patients.
pub const DEFAULT_MRN_SYSTEM: &str = "urn:ferrocount:mrn";

fn default_mrn_system() -> String {
    DEFAULT_MRN_SYSTEM.to_owned()
}

fn default_fhir_timeout_ms() -> u64 {
    30_000
}

fn default_timeout_ms() -> u64 {
    10_000
}

impl DestinationConfig {
    /// The format its messages take.
    pub fn format(&self) -> MessageFormat {
        match self {
            Self::Hl7v2 { .. } => MessageFormat::Hl7v2,
            Self::Fhir { .. } => MessageFormat::Fhir,
        }
    }

    /// Its name: the configured one, or `<kind>-<n>` (n counts from 1 in the file's order).
    pub fn name(&self, position: usize) -> String {
        let configured = match self {
            Self::Hl7v2 { name, .. } | Self::Fhir { name, .. } => name,
        };
        configured
            .clone()
            .unwrap_or_else(|| format!("{}-{}", self.format().as_str(), position + 1))
    }
}

/// The host of `host:port` (an IPv6 address without its brackets).
fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

impl DestinationConfig {
    /// An HL7 v2 destination's link: TLS with its CA file and server name (default: the host),
    /// or plain TCP. The error names the key that is wrong.
    pub fn mllp_link(&self) -> Result<Option<mllp::Link>, String> {
        let Self::Hl7v2 {
            address,
            tls,
            ca_file,
            server_name,
            ..
        } = self
        else {
            return Ok(None);
        };
        if !tls {
            if ca_file.is_some() {
                return Err("ca_file is set but tls is not: set tls = true".to_owned());
            }
            if server_name.is_some() {
                return Err("server_name is set but tls is not: set tls = true".to_owned());
            }
            return Ok(Some(mllp::Link::Plain));
        }
        let Some(ca_file) = ca_file else {
            return Err(
                "ca_file is missing: tls = true needs the PEM file of the CA that signed the \
                 receiver's certificate"
                    .to_owned(),
            );
        };
        let roots = mllp::ca_roots(ca_file).map_err(|reason| format!("ca_file {reason}"))?;
        let name = match server_name {
            Some(name) => mllp::server_name(name).map_err(|r| format!("server_name {r}"))?,
            None => mllp::server_name(host_of(address))
                .map_err(|r| format!("address: its host {r}; set server_name"))?,
        };
        mllp::Link::tls(roots, name).map(Some)
    }

    /// Whether this is an HL7 v2 destination sent in plain text to another machine (not a
    /// loopback address): allowed, and warned about at start.
    pub fn plain_text_off_machine(&self) -> bool {
        match self {
            Self::Hl7v2 { address, tls, .. } => {
                let host = host_of(address);
                let loopback = host.eq_ignore_ascii_case("localhost")
                    || host
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback());
                !tls && !loopback
            }
            Self::Fhir { .. } => false,
        }
    }
}

/// The outbox targets of the configured destinations, in order.
pub fn outbox_targets(destinations: &[DestinationConfig]) -> Vec<OutboxTarget> {
    destinations
        .iter()
        .enumerate()
        .map(|(i, d)| OutboxTarget {
            name: d.name(i),
            format: d.format(),
        })
        .collect()
}

/// The most characters the performing lab's name may have as HL7 v2 writes it (OBX-23, XON.1
/// in v2.5.1; `&`, `|`, `^`, `~` and `\` count three each, as escaped).
pub const MAX_HL7_LAB_NAME_CHARS: usize = 50;

/// Checks what the HL7 v2 messages take from `[site]`: with an HL7 v2 destination configured,
/// `lab_name` (OBX-23) is at most [`MAX_HL7_LAB_NAME_CHARS`] as written. A longer name is
/// refused rather than cut: the message would name another lab, or fail the receiver's
/// validation and be parked.
pub fn check_site(lab_name: &str, destinations: &[DestinationConfig]) -> Result<(), String> {
    let sends_hl7 = destinations
        .iter()
        .any(|d| d.format() == MessageFormat::Hl7v2);
    let written = crate::interop::hl7::escape(lab_name).chars().count();
    if sends_hl7 && written > MAX_HL7_LAB_NAME_CHARS {
        return Err(format!(
            "[site] lab_name is {written} characters as HL7 v2 writes it; OBX-23 (the performing \
             lab, XON.1) holds at most {MAX_HL7_LAB_NAME_CHARS}: shorten it (`&`, `|`, `^`, `~` \
             and `\\` count three each)"
        ));
    }
    Ok(())
}

/// Checks the destinations: each problem named with the destination's position and key.
pub fn check(destinations: &[DestinationConfig]) -> Result<(), String> {
    let mut names = std::collections::BTreeSet::new();
    for (i, destination) in destinations.iter().enumerate() {
        let name = destination.name(i);
        let at = format!("destinations[{i}] ({name})");
        if name.trim().is_empty() || name.len() > 64 {
            return Err(format!("{at}: name must be 1 to 64 characters"));
        }
        if !names.insert(name.clone()) {
            return Err(format!("{at}: name {name:?} is used twice"));
        }
        match destination {
            DestinationConfig::Hl7v2 {
                address,
                timeout_ms,
                receiving_application,
                receiving_facility,
                sending_facility,
                mrn_authority,
                ..
            } => {
                for (key, value) in [
                    ("receiving_application", receiving_application),
                    ("receiving_facility", receiving_facility),
                    ("sending_facility", sending_facility),
                    ("mrn_authority", mrn_authority),
                ] {
                    // HL7 v2.5.1 HD.1 (namespace id) holds at most 20 characters.
                    if value.chars().count() > 20 {
                        return Err(format!("{at}: {key} {value:?} is over 20 characters"));
                    }
                }
                let port = address
                    .rsplit_once(':')
                    .filter(|(host, _)| !host.is_empty())
                    .and_then(|(_, port)| port.parse::<u16>().ok())
                    .filter(|port| *port > 0);
                if port.is_none() {
                    return Err(format!(
                        "{at}: address {address:?} is not host:port (e.g. \"lis.example:2575\")"
                    ));
                }
                if !(100..=600_000).contains(timeout_ms) {
                    return Err(format!(
                        "{at}: timeout_ms {timeout_ms} is outside 100 to 600000"
                    ));
                }
                destination
                    .mllp_link()
                    .map_err(|reason| format!("{at}: {reason}"))?;
            }
            DestinationConfig::Fhir {
                base_url,
                token_file,
                ca_file,
                mrn_system,
                timeout_ms,
                ..
            } => {
                let host = base_url.strip_prefix("https://").unwrap_or("");
                if host.is_empty()
                    || host.starts_with('/')
                    || base_url.contains(char::is_whitespace)
                {
                    return Err(format!(
                        "{at}: base_url {base_url:?} must be an https:// URL (results travel \
                         encrypted)"
                    ));
                }
                for (key, file) in [
                    ("token_file", Some(token_file)),
                    ("ca_file", ca_file.as_ref()),
                ] {
                    if let Some(file) = file.filter(|file| !file.is_file()) {
                        return Err(format!(
                            "{at}: {key} {} does not exist or is not a file",
                            file.display()
                        ));
                    }
                }
                if !mrn_system.contains(':') || mrn_system.contains(char::is_whitespace) {
                    return Err(format!("{at}: mrn_system {mrn_system:?} is not a URI"));
                }
                if !(100..=600_000).contains(timeout_ms) {
                    return Err(format!(
                        "{at}: timeout_ms {timeout_ms} is outside 100 to 600000"
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<DestinationConfig>, String> {
        #[derive(Deserialize)]
        struct File {
            destinations: Vec<DestinationConfig>,
        }
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        check(&file.destinations)?;
        Ok(file.destinations)
    }

    #[test]
    fn destinations_are_read_named_and_checked() {
        let read = parse(
            "[[destinations]]\nkind = \"hl7v2\"\naddress = \"lis.example:2575\"\n\
             [[destinations]]\nkind = \"hl7v2\"\nname = \"backup-lis\"\naddress = \"10.0.0.9:2575\"\n",
        )
        .unwrap();
        let targets = outbox_targets(&read);
        assert_eq!(targets[0].name, "hl7v2-1");
        assert_eq!(targets[1].name, "backup-lis");
        assert_eq!(targets[0].format, MessageFormat::Hl7v2);
        let fhir = parse(
            "[[destinations]]\nkind = \"fhir\"\nbase_url = \"https://fhir.example/r4\"\n\
             token_file = \"/etc/hostname\"\n",
        )
        .unwrap();
        assert!(matches!(
            &fhir[0],
            DestinationConfig::Fhir { mrn_system, ca_file: None, timeout_ms: 30_000, .. }
                if mrn_system == DEFAULT_MRN_SYSTEM
        ));
        assert_eq!(outbox_targets(&fhir)[0].name, "fhir-1");

        for (text, says) in [
            (
                "kind = \"hl7v2\"\naddress = \"lis.example\"",
                "not host:port",
            ),
            ("kind = \"hl7v2\"\naddress = \":2575\"", "not host:port"),
            (
                "kind = \"hl7v2\"\naddress = \"h:1\"\ntimeout_ms = 5",
                "timeout_ms",
            ),
            (
                "kind = \"hl7v2\"\naddress = \"h:1\"\nport = 3",
                "unknown field",
            ),
            (
                "kind = \"hl7v2\"\naddress = \"h:1\"\nmrn_authority = \"A very long authority name\"",
                "over 20",
            ),
            ("kind = \"smtp\"\naddress = \"h:1\"", "unknown variant"),
            (
                "kind = \"fhir\"\nbase_url = \"http://fhir.example\"\ntoken_file = \"/etc/hostname\"",
                "https",
            ),
            (
                "kind = \"fhir\"\nbase_url = \"https://fhir.example\"\ntoken_file = \"/no/such/token\"",
                "token_file",
            ),
            (
                "kind = \"fhir\"\nbase_url = \"http://127.0.0.1:8080\"\ntoken_file = \"/etc/hostname\"",
                "https",
            ),
            (
                "kind = \"fhir\"\nbase_url = \"https://fhir.example\"\ntoken_file = \"/etc/hostname\"\nca_file = \"/no/such/ca.pem\"",
                "ca_file",
            ),
            (
                "kind = \"fhir\"\nbase_url = \"https://fhir.example\"\ntoken_file = \"/etc/hostname\"\nmrn_system = \"MRN\"",
                "not a URI",
            ),
        ] {
            let error = parse(&format!("[[destinations]]\n{text}\n")).unwrap_err();
            assert!(error.contains(says), "{text}: {error}");
        }
        let twice = parse(
            "[[destinations]]\nkind = \"hl7v2\"\nname = \"lis\"\naddress = \"a:1\"\n\
             [[destinations]]\nkind = \"hl7v2\"\nname = \"lis\"\naddress = \"b:1\"\n",
        )
        .unwrap_err();
        assert!(twice.contains("used twice"), "{twice}");
    }

    #[test]
    fn tls_needs_its_ca_file_and_plain_text_off_the_machine_is_known() {
        for (text, says) in [
            ("tls = true", "ca_file is missing"),
            (
                "tls = true\nca_file = \"/no/such/ca.pem\"",
                "ca_file /no/such/ca.pem cannot be read",
            ),
            (
                "tls = true\nca_file = \"/etc/hostname\"",
                "ca_file /etc/hostname holds no certificate",
            ),
            (
                "ca_file = \"/etc/hostname\"",
                "ca_file is set but tls is not",
            ),
            ("server_name = \"lis\"", "server_name is set but tls is not"),
        ] {
            let error = parse(&format!(
                "[[destinations]]\nkind = \"hl7v2\"\naddress = \"lis.example:2575\"\n{text}\n"
            ))
            .unwrap_err();
            assert!(error.contains(says), "{text}: {error}");
        }
        let off_machine = |address: &str, tls: bool| {
            let text = format!("[[destinations]]\nkind = \"hl7v2\"\naddress = \"{address}\"\n");
            let mut read = parse(&text).unwrap();
            if let DestinationConfig::Hl7v2 { tls: on, .. } = &mut read[0] {
                *on = tls;
            }
            read[0].plain_text_off_machine()
        };
        assert!(off_machine("lis.example:2575", false));
        assert!(off_machine("10.0.0.9:2575", false));
        assert!(!off_machine("lis.example:2575", true));
        for loopback in [
            "127.0.0.1:2575",
            "localhost:2575",
            "[::1]:2575",
            "127.8.0.1:1",
        ] {
            assert!(!off_machine(loopback, false), "{loopback}");
        }
    }

    #[test]
    fn a_lab_name_too_long_for_obx_23_is_refused_when_hl7_is_sent() {
        let hl7 =
            parse("[[destinations]]\nkind = \"hl7v2\"\naddress = \"lis.example:2575\"\n").unwrap();
        let fifty = "L".repeat(50);
        assert_eq!(check_site(&fifty, &hl7), Ok(()));
        let error = check_site(&format!("{fifty}x"), &hl7).unwrap_err();
        assert!(
            error.contains("lab_name") && error.contains("51"),
            "{error}"
        );
        // `&` is written `\T\`: three characters.
        let escaped = check_site(&format!("{}&", "L".repeat(48)), &hl7).unwrap_err();
        assert!(escaped.contains("51"), "{escaped}");
        assert_eq!(
            check_site(&format!("{fifty}x"), &[]),
            Ok(()),
            "nothing sent"
        );
    }
}
