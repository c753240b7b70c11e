//! Who is asking: the caller the gate in front of every request (the `auth` module) found, and the
//! rules every layer applies with it. An upload belongs to the owner that created it; a caller
//! sees an upload only if it is the owner's or the caller may see every owner's. Another
//! owner's upload is, to the caller, an upload that does not exist.

use std::fmt;

/// The longest owner accepted, in bytes.
pub const MAX_OWNER_BYTES: usize = 256;

/// An owner: the subject of a verified token, or what a pre-access hook named. 1 to
/// `MAX_OWNER_BYTES` bytes of printable text (no control characters), so it can be logged,
/// stored and sent to hooks as it is.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Owner(String);

impl Owner {
    pub fn parse(s: &str) -> Option<Owner> {
        let ok = !s.is_empty() && s.len() <= MAX_OWNER_BYTES && !s.chars().any(char::is_control);
        ok.then(|| Owner(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The kinds of media a caller may be restricted to (a token's `media_kinds`).
pub const MEDIA_KINDS: &[&str] = &["video", "audio", "image", "document"];

/// A caller: who it is and what it may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The owner of what this caller creates; `None` for an anonymous caller (`--auth none`).
    pub owner: Option<Owner>,
    /// May read, change and list every owner's uploads: an admin, or anyone when
    /// authentication is off.
    pub sees_all: bool,
    /// The largest upload this caller may create (a token's narrower limit).
    pub max_size: Option<u64>,
    /// The media kinds this caller may upload (`None`: any).
    pub media_kinds: Option<Vec<String>>,
}

impl Caller {
    /// Anyone, when authentication is off: today's open server.
    pub fn anyone() -> Caller {
        Caller {
            owner: None,
            sees_all: true,
            max_size: None,
            media_kinds: None,
        }
    }

    /// No one in particular: a request that needs no credential (a signed media URL carries
    /// its own), which sees nothing by ownership.
    pub fn nobody() -> Caller {
        Caller {
            owner: None,
            sees_all: false,
            max_size: None,
            media_kinds: None,
        }
    }

    /// The caller that created an upload owned by `owner` (`None`: made while authentication
    /// was off, by anyone), for work done later on its behalf.
    pub fn creator_of(owner: Option<&Owner>) -> Caller {
        owner.map_or_else(Caller::anyone, |o| Caller::owner(o.clone()))
    }

    /// An authenticated owner with no narrower limits.
    pub fn owner(owner: Owner) -> Caller {
        Caller {
            owner: Some(owner),
            sees_all: false,
            max_size: None,
            media_kinds: None,
        }
    }

    /// Whether this caller may see an upload owned by `owner` (`None`: made while
    /// authentication was off, visible only to whoever sees everything).
    pub fn may_see(&self, owner: Option<&Owner>) -> bool {
        self.sees_all || (owner.is_some() && owner == self.owner.as_ref())
    }

    /// Whether this caller may upload a file of media kind `kind` (`video`, `image`, …).
    pub fn may_upload_kind(&self, kind: &str) -> bool {
        self.media_kinds
            .as_ref()
            .is_none_or(|kinds| kinds.iter().any(|k| k == kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_printable_and_bounded() {
        assert!(Owner::parse("user-42").is_some());
        assert!(Owner::parse("ü@example.com").is_some());
        assert!(Owner::parse("").is_none());
        assert!(Owner::parse("a\nb").is_none());
        assert!(Owner::parse(&"x".repeat(MAX_OWNER_BYTES + 1)).is_none());
    }

    #[test]
    fn a_caller_sees_its_own_uploads_only_unless_it_sees_all() {
        let alice = Owner::parse("alice").unwrap();
        let bob = Owner::parse("bob").unwrap();
        let a = Caller::owner(alice.clone());
        assert!(a.may_see(Some(&alice)));
        assert!(!a.may_see(Some(&bob)));
        assert!(!a.may_see(None), "an unowned upload is not everyone's");
        let admin = Caller {
            sees_all: true,
            ..Caller::owner(bob)
        };
        assert!(admin.may_see(Some(&alice)) && admin.may_see(None));
        assert!(Caller::anyone().may_see(None));
    }

    #[test]
    fn media_kinds_narrow_what_may_be_uploaded() {
        let mut c = Caller::owner(Owner::parse("a").unwrap());
        assert!(c.may_upload_kind("video"));
        c.media_kinds = Some(vec!["image".into()]);
        assert!(c.may_upload_kind("image") && !c.may_upload_kind("video"));
    }
}
