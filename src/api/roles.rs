//! What a key may do: its role's permissions, from the built-in roles or the
//! config's `[[api.roles]]`.

use serde::Serialize;

use crate::config::{ApiConfig, CallScope, RecordingAccess, RoleConfig, WriteKind, BUILTIN_ROLES};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Permissions {
    /// `all`, or `own`: only calls whose agent is the key's agent id.
    #[schema(value_type = String, example = "all")]
    pub calls: CallScope,
    #[schema(value_type = String, example = "listen")]
    pub recordings: RecordingAccess,
    pub notes: bool,
    pub links: bool,
    /// Create and delete calls.
    pub write_calls: bool,
    pub ops: bool,
    pub admin: bool,
}

/// One permission a route needs, for its 403 answer and the role matrix test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Listen,
    Download,
    Notes,
    Links,
    WriteCalls,
    Ops,
    Admin,
}

impl Need {
    pub fn as_str(self) -> &'static str {
        match self {
            Need::Listen => "recordings: listen",
            Need::Download => "recordings: download",
            Need::Notes => "writes: notes",
            Need::Links => "writes: links",
            Need::WriteCalls => "writes: calls",
            Need::Ops => "ops",
            Need::Admin => "admin",
        }
    }
}

impl Permissions {
    pub fn allows(&self, need: Need) -> bool {
        match need {
            Need::Listen => self.recordings >= RecordingAccess::Listen,
            Need::Download => self.recordings >= RecordingAccess::Download,
            Need::Notes => self.notes,
            Need::Links => self.links,
            Need::WriteCalls => self.write_calls,
            Need::Ops => self.ops,
            Need::Admin => self.admin,
        }
    }

    fn from_role(r: &RoleConfig) -> Permissions {
        Permissions {
            calls: r.calls,
            recordings: r.recordings,
            notes: r.writes.contains(&WriteKind::Notes),
            links: r.writes.contains(&WriteKind::Links),
            write_calls: r.writes.contains(&WriteKind::Calls),
            ops: r.ops,
            admin: r.admin,
        }
    }
}

fn builtin(name: &str) -> Option<Permissions> {
    use CallScope::*;
    use RecordingAccess as R;
    let p = |calls, recordings, notes, links, write_calls, ops, admin| Permissions {
        calls,
        recordings,
        notes,
        links,
        write_calls,
        ops,
        admin,
    };
    Some(match name {
        "admin" => p(All, R::Download, true, true, true, true, true),
        // Reviews every call and keeps recordings; annotates, does not create.
        "supervisor" => p(All, R::Download, true, true, false, false, false),
        // Their own calls: listens and writes the call's note.
        "agent" => p(Own, R::Listen, true, false, false, false, false),
        // The CRM's server side: logs calls it made elsewhere, links, notes.
        "integration" => p(All, R::Listen, true, true, true, false, false),
        "ops" => p(All, R::None, false, false, false, true, false),
        _ => return None,
    })
}

/// The permissions of role `name`; `None` when no such role exists.
pub fn permissions(api: Option<&ApiConfig>, name: &str) -> Option<Permissions> {
    if let Some(p) = builtin(name) {
        return Some(p);
    }
    api?.roles
        .iter()
        .find(|r| r.name == name)
        .map(Permissions::from_role)
}

/// Every role's name: the built-in ones, then the config's.
pub fn role_names(api: Option<&ApiConfig>) -> Vec<String> {
    let mut names: Vec<String> = BUILTIN_ROLES.iter().map(|s| (*s).to_owned()).collect();
    if let Some(api) = api {
        names.extend(api.roles.iter().map(|r| r.name.clone()));
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_roles_are_what_the_readme_says() {
        let agent = permissions(None, "agent").unwrap();
        assert_eq!(agent.calls, CallScope::Own);
        assert!(agent.allows(Need::Listen) && !agent.allows(Need::Download));
        let sup = permissions(None, "supervisor").unwrap();
        assert!(sup.allows(Need::Download) && !sup.allows(Need::Admin));
        let int = permissions(None, "integration").unwrap();
        assert!(int.allows(Need::WriteCalls) && int.allows(Need::Links));
        assert!(!permissions(None, "ops").unwrap().allows(Need::Listen));
        assert!(permissions(None, "admin").unwrap().allows(Need::Admin));
        assert_eq!(permissions(None, "nobody"), None);
    }

    #[test]
    fn config_roles_extend_the_builtin_ones() {
        let api = ApiConfig {
            roles: vec![RoleConfig {
                name: "qa".into(),
                calls: CallScope::All,
                recordings: RecordingAccess::Listen,
                writes: vec![WriteKind::Notes],
                ops: false,
                admin: false,
            }],
            ..ApiConfig::default()
        };
        let qa = permissions(Some(&api), "qa").unwrap();
        assert!(qa.allows(Need::Notes) && !qa.allows(Need::Links));
        assert_eq!(
            role_names(Some(&api)).last().map(String::as_str),
            Some("qa")
        );
    }
}
