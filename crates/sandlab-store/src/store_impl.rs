//! The [`Store`](crate::Store) impl both backends share: every method calls the function
//! of the same name in the backend's own modules (`users`, `tokens`, `sessions`,
//! `invites`, `resets`, `port_grants`, `submissions`, `sandboxes`, `labs`, `audit`), which
//! hold the SQL of their dialect. Written once, so a new method is added in one place and the two stores
//! cannot drift apart in what calls what.

/// `impl Store for $ty`, invoked in the backend's `mod.rs` (where its modules are in
/// scope).
macro_rules! delegate_store {
    ($ty:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::Store for $ty {
            async fn check_writable(&self) -> $crate::error::Result<()> {
                <$ty>::check_writable(self).await
            }

            fn records(
                self: std::sync::Arc<Self>,
            ) -> std::sync::Arc<dyn sandlab_core::RecordStore> {
                self
            }
            fn leases(self: std::sync::Arc<Self>) -> std::sync::Arc<dyn sandlab_core::LeaseStore> {
                self
            }

            async fn create_user(
                &self,
                new: $crate::model::NewUser,
            ) -> $crate::error::Result<$crate::model::User> {
                users::create(self, new).await
            }
            async fn get_user(&self, id: &str) -> $crate::error::Result<$crate::model::User> {
                users::get(self, id).await
            }
            async fn get_user_by_name(
                &self,
                username: &str,
            ) -> $crate::error::Result<$crate::model::User> {
                users::get_by_name(self, username).await
            }
            async fn list_users(
                &self,
                page: $crate::page::PageRequest,
            ) -> $crate::error::Result<$crate::page::Page<$crate::model::User>> {
                users::list(self, page).await
            }
            async fn update_user(
                &self,
                id: &str,
                update: $crate::model::UserUpdate,
            ) -> $crate::error::Result<$crate::model::User> {
                users::update(self, id, update).await
            }
            async fn delete_user(&self, id: &str) -> $crate::error::Result<()> {
                users::delete(self, id).await
            }
            async fn count_admins(&self) -> $crate::error::Result<u64> {
                users::count_admins(self).await
            }
            async fn verify_login(
                &self,
                username: &str,
                password: &str,
            ) -> $crate::error::Result<Option<$crate::model::User>> {
                users::verify_login(self, username, password).await
            }

            async fn create_token(
                &self,
                user_id: &str,
                name: &str,
            ) -> $crate::error::Result<($crate::model::ApiToken, String)> {
                tokens::create(self, user_id, name).await
            }
            async fn list_tokens(
                &self,
                user_id: &str,
            ) -> $crate::error::Result<Vec<$crate::model::ApiToken>> {
                tokens::list(self, user_id).await
            }
            async fn delete_token(
                &self,
                user_id: &str,
                token_id: &str,
            ) -> $crate::error::Result<()> {
                tokens::delete(self, user_id, token_id).await
            }
            async fn authenticate_token(
                &self,
                secret: &str,
            ) -> $crate::error::Result<Option<($crate::model::User, String)>> {
                tokens::authenticate(self, secret).await
            }

            async fn create_session(
                &self,
                user_id: &str,
                ttl: std::time::Duration,
            ) -> $crate::error::Result<($crate::model::LoginSession, String)> {
                sessions::create(self, user_id, ttl).await
            }
            async fn authenticate_session(
                &self,
                secret: &str,
            ) -> $crate::error::Result<Option<($crate::model::User, $crate::model::LoginSession)>>
            {
                sessions::authenticate(self, secret).await
            }
            async fn delete_session(&self, secret: &str) -> $crate::error::Result<()> {
                sessions::delete(self, secret).await
            }
            async fn delete_expired_sessions(&self) -> $crate::error::Result<u64> {
                sessions::delete_expired(self).await
            }

            async fn create_invite(
                &self,
                new: $crate::links::NewInvite,
            ) -> $crate::error::Result<($crate::links::Invite, String)> {
                invites::create(self, new).await
            }
            async fn list_invites(
                &self,
                page: $crate::page::PageRequest,
            ) -> $crate::error::Result<$crate::page::Page<$crate::links::Invite>> {
                invites::list(self, page).await
            }
            async fn delete_invite(&self, id: &str) -> $crate::error::Result<()> {
                invites::delete(self, id).await
            }
            async fn redeem_invite(
                &self,
                secret: &str,
                username: &str,
                password: String,
            ) -> $crate::error::Result<
                std::result::Result<
                    ($crate::model::User, $crate::links::Invite),
                    $crate::links::LinkRefusal,
                >,
            > {
                invites::redeem(self, secret, username, password).await
            }
            async fn create_password_reset(
                &self,
                user_id: &str,
                created_by: Option<&str>,
            ) -> $crate::error::Result<($crate::links::PasswordReset, String)> {
                resets::create(self, user_id, created_by).await
            }
            async fn redeem_password_reset(
                &self,
                secret: &str,
                password: String,
            ) -> $crate::error::Result<
                std::result::Result<$crate::model::User, $crate::links::LinkRefusal>,
            > {
                resets::redeem(self, secret, password).await
            }
            async fn change_password(
                &self,
                user_id: &str,
                password: String,
                keep_session: Option<&str>,
            ) -> $crate::error::Result<()> {
                resets::change_password(self, user_id, password, keep_session).await
            }

            async fn begin_sso_login(
                &self,
                state: &str,
                new: $crate::identities::NewSsoLogin,
            ) -> $crate::error::Result<()> {
                identities::begin_sso_login(self, state, new).await
            }
            async fn take_sso_login(
                &self,
                state: &str,
            ) -> $crate::error::Result<Option<$crate::identities::SsoLogin>> {
                identities::take_sso_login(self, state).await
            }
            async fn sso_sign_in(
                &self,
                identity: $crate::identities::NewIdentity,
            ) -> $crate::error::Result<Option<$crate::model::User>> {
                identities::sso_sign_in(self, identity).await
            }
            async fn user_by_verified_email(
                &self,
                email: &str,
            ) -> $crate::error::Result<Option<$crate::model::User>> {
                identities::user_by_verified_email(self, email).await
            }
            async fn link_identity(
                &self,
                user_id: &str,
                identity: $crate::identities::NewIdentity,
            ) -> $crate::error::Result<$crate::identities::Identity> {
                identities::link_identity(self, user_id, identity).await
            }
            async fn create_sso_user(
                &self,
                identity: $crate::identities::NewIdentity,
                username: &str,
                role: $crate::model::Role,
            ) -> $crate::error::Result<($crate::model::User, $crate::identities::Identity)> {
                identities::create_sso_user(self, identity, username, role).await
            }

            async fn create_port_grant(
                &self,
                new: $crate::model::NewPortGrant,
            ) -> $crate::error::Result<($crate::model::PortGrant, String)> {
                port_grants::create(self, new).await
            }
            async fn redeem_port_code(
                &self,
                secret: &str,
                sandbox: &str,
                port: u16,
            ) -> $crate::error::Result<Option<$crate::model::PortGrant>> {
                port_grants::redeem_code(self, secret, sandbox, port).await
            }
            async fn authenticate_port_grant(
                &self,
                secret: &str,
            ) -> $crate::error::Result<Option<$crate::model::PortGrant>> {
                port_grants::authenticate(self, secret).await
            }
            async fn list_port_shares(
                &self,
                sandbox: &str,
            ) -> $crate::error::Result<Vec<$crate::model::PortGrant>> {
                port_grants::list_shares(self, sandbox).await
            }
            async fn delete_port_share(
                &self,
                sandbox: &str,
                id: &str,
            ) -> $crate::error::Result<()> {
                port_grants::delete_share(self, sandbox, id).await
            }

            async fn create_submissions(
                &self,
                new: &[$crate::model::NewSubmission],
            ) -> $crate::error::Result<Vec<$crate::model::Submission>> {
                submissions::create(self, new).await
            }
            async fn get_submissions(
                &self,
                tokens: &[String],
            ) -> $crate::error::Result<Vec<$crate::model::Submission>> {
                submissions::get(self, tokens).await
            }
            async fn start_submission(&self, token: &str) -> $crate::error::Result<bool> {
                submissions::start(self, token).await
            }
            async fn finish_submission(
                &self,
                token: &str,
                result: &str,
            ) -> $crate::error::Result<bool> {
                submissions::finish(self, token, result).await
            }
            async fn unfinished_submissions(
                &self,
            ) -> $crate::error::Result<Vec<$crate::model::Submission>> {
                submissions::unfinished(self).await
            }
            async fn delete_submission(
                &self,
                token: &str,
                owner: Option<&str>,
            ) -> $crate::error::Result<bool> {
                submissions::delete(self, token, owner).await
            }
            async fn expire_submissions(&self, before_ms: i64) -> $crate::error::Result<u64> {
                submissions::expire(self, before_ms).await
            }
            async fn submission_usage(&self, owner: &str) -> $crate::error::Result<(u64, u64)> {
                submissions::usage(self, owner).await
            }
            async fn take_submission(
                &self,
                token: &str,
                from: Option<&str>,
                to: &str,
            ) -> $crate::error::Result<bool> {
                submissions::take(self, token, from, to).await
            }

            async fn get_sandbox(
                &self,
                id: &sandlab_core::SandboxId,
                owner: Option<&str>,
            ) -> $crate::error::Result<sandlab_core::SandboxRecord> {
                sandboxes::get_for(self, id, owner).await
            }
            async fn list_sandboxes(
                &self,
                owner: Option<&str>,
                page: $crate::page::PageRequest,
            ) -> $crate::error::Result<$crate::page::Page<sandlab_core::SandboxRecord>> {
                sandboxes::list_page(self, owner, page).await
            }
            async fn count_live_sandboxes(&self, owner: &str) -> $crate::error::Result<u64> {
                sandboxes::count_live(self, owner).await
            }

            async fn create_org(
                &self,
                new: $crate::orgs::NewOrg,
            ) -> $crate::error::Result<$crate::orgs::Org> {
                orgs::create(self, new).await
            }
            async fn get_org(&self, key: &str) -> $crate::error::Result<$crate::orgs::Org> {
                orgs::get(self, key).await
            }
            async fn list_orgs(&self) -> $crate::error::Result<Vec<$crate::orgs::Org>> {
                orgs::list(self).await
            }
            async fn update_org(
                &self,
                id: &str,
                update: $crate::orgs::OrgUpdate,
            ) -> $crate::error::Result<$crate::orgs::Org> {
                orgs::update(self, id, update).await
            }
            async fn delete_org(&self, id: &str) -> $crate::error::Result<()> {
                orgs::delete(self, id).await
            }
            async fn set_org_member(
                &self,
                org_id: &str,
                user_id: &str,
                role: $crate::orgs::OrgRole,
            ) -> $crate::error::Result<$crate::orgs::OrgMember> {
                orgs::set_member(self, org_id, user_id, role).await
            }
            async fn remove_org_member(
                &self,
                org_id: &str,
                user_id: &str,
            ) -> $crate::error::Result<()> {
                orgs::remove_member(self, org_id, user_id).await
            }
            async fn list_org_members(
                &self,
                org_id: &str,
            ) -> $crate::error::Result<Vec<$crate::orgs::OrgMember>> {
                orgs::members(self, org_id).await
            }
            async fn user_orgs(
                &self,
                user_id: &str,
            ) -> $crate::error::Result<Vec<$crate::orgs::Membership>> {
                orgs::of_user(self, user_id).await
            }
            async fn take_org_place(
                &self,
                org_id: &str,
                sandbox: &sandlab_core::SandboxId,
            ) -> $crate::error::Result<std::result::Result<(), $crate::orgs::OrgFull>> {
                orgs::take_place(self, org_id, sandbox).await
            }
            async fn move_org_place(
                &self,
                from: &sandlab_core::SandboxId,
                to: &sandlab_core::SandboxId,
            ) -> $crate::error::Result<()> {
                orgs::move_place(self, from, to).await
            }
            async fn release_org_place(
                &self,
                sandbox: &sandlab_core::SandboxId,
            ) -> $crate::error::Result<()> {
                orgs::release_place(self, sandbox).await
            }
            async fn sandbox_org(
                &self,
                sandbox: &sandlab_core::SandboxId,
            ) -> $crate::error::Result<Option<String>> {
                orgs::of_sandbox(self, sandbox).await
            }
            async fn count_org_sandboxes(&self, org_id: &str) -> $crate::error::Result<u64> {
                orgs::count_live(self, org_id).await
            }

            async fn put_lab_session(
                &self,
                session: &$crate::model::LabSession,
            ) -> $crate::error::Result<()> {
                labs::put(self, session).await
            }
            async fn get_lab_session(
                &self,
                id: &str,
                owner: Option<&str>,
            ) -> $crate::error::Result<$crate::model::LabSession> {
                labs::get(self, id, owner).await
            }
            async fn list_lab_sessions(
                &self,
                owner: Option<&str>,
            ) -> $crate::error::Result<Vec<$crate::model::LabSession>> {
                labs::list(self, owner).await
            }
            async fn open_lab_sessions(
                &self,
                owner: Option<&str>,
            ) -> $crate::error::Result<Vec<$crate::model::LabSession>> {
                labs::open(self, owner).await
            }
            async fn delete_lab_session(&self, id: &str) -> $crate::error::Result<()> {
                labs::delete(self, id).await
            }
            async fn take_lab_session(
                &self,
                id: &str,
                from: Option<&str>,
                to: &str,
            ) -> $crate::error::Result<bool> {
                labs::take(self, id, from, to).await
            }
            async fn hand_over_lab_session(
                &self,
                id: &str,
                hand: &$crate::model::HandOver<'_>,
            ) -> $crate::error::Result<bool> {
                labs::hand_over(self, id, hand).await
            }
            async fn mark_task_done(
                &self,
                user: &str,
                lab: &str,
                task: &str,
            ) -> $crate::error::Result<()> {
                labs::mark_done(self, user, lab, task).await
            }
            async fn done_tasks(
                &self,
                user: &str,
                lab: &str,
            ) -> $crate::error::Result<Vec<String>> {
                labs::done(self, user, lab).await
            }
            async fn all_done_tasks(
                &self,
                user: &str,
            ) -> $crate::error::Result<Vec<(String, String)>> {
                labs::all_done(self, user).await
            }
            async fn reveal_hint(
                &self,
                user: &str,
                lab: &str,
                task: &str,
            ) -> $crate::error::Result<()> {
                labs::reveal_hint(self, user, lab, task).await
            }
            async fn revealed_hints(
                &self,
                user: &str,
                lab: &str,
            ) -> $crate::error::Result<Vec<String>> {
                labs::hints(self, user, lab).await
            }

            async fn audit(
                &self,
                actor: Option<&str>,
                action: &str,
                target: Option<&str>,
                detail: serde_json::Value,
            ) -> $crate::error::Result<i64> {
                audit::append(self, actor, action, target, &detail).await
            }
            async fn list_audit(
                &self,
                page: $crate::page::PageRequest,
            ) -> $crate::error::Result<$crate::page::Page<$crate::model::AuditEntry>> {
                audit::list(self, page).await
            }

            async fn publish(&self, topic: &str, payload: &str) -> $crate::error::Result<()> {
                bus::publish(self, topic, payload).await
            }
            async fn subscribe(
                &self,
                topic: &str,
            ) -> $crate::error::Result<$crate::bus::Subscription> {
                bus::subscribe(self, topic).await
            }
        }
    };
}

pub(crate) use delegate_store;
