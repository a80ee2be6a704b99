//! The OAuth client registry's queries, written once for both dialects: one statement each. Lists
//! (redirect URIs, grants, scopes) are stored as JSON arrays of strings; a stored value this build
//! cannot read (an unknown grant, a malformed list) is `StoreError::Corrupt`, never absent.

use async_trait::async_trait;
use palisade_core::oauth::{ClientKind, GrantType, OAuthClient, TokenAuthMethod};
use palisade_core::store::{OAuthClientStore, StoreError};
use palisade_core::user::UserId;

use super::durable::Stored;
use super::{SqlStore, on_pool};
use crate::error;

const INSERT: &str = "INSERT INTO oauth_clients (client_id, name, kind, secret_hash, hash_key_id, redirect_uris, \
     post_logout_redirect_uris, grant_types, scopes, auth_method, jwks, jwks_uri, created_at, created_by) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";

const COLUMNS: &str = "SELECT client_id, name, kind, secret_hash, hash_key_id, redirect_uris, \
     post_logout_redirect_uris, grant_types, scopes, auth_method, jwks, jwks_uri, created_at, created_by \
     FROM oauth_clients";

const DELETE: &str = "DELETE FROM oauth_clients WHERE client_id = $1";

/// An `oauth_clients` row, generic over how the dialect stores ids and instants.
#[derive(sqlx::FromRow)]
struct ClientRow<Id, At> {
    client_id: String,
    name: String,
    kind: String,
    secret_hash: Option<Vec<u8>>,
    hash_key_id: Option<Id>,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    grant_types: String,
    scopes: String,
    auth_method: String,
    jwks: Option<String>,
    jwks_uri: Option<String>,
    created_at: At,
    created_by: Option<Id>,
}

fn list(client: &str, column: &str, text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| error::corrupt(format!("client {client} has an invalid {column} ({e})")))
}

fn json(values: &[String]) -> String {
    serde_json::Value::from(values.to_vec()).to_string()
}

impl<Id, At> ClientRow<Id, At>
where
    Id: Stored<Output = uuid::Uuid>,
    At: Stored<Output = time::OffsetDateTime>,
{
    fn into_domain(self) -> Result<OAuthClient, StoreError> {
        let id = self.client_id;
        let grant_types = list(&id, "grant_types", &self.grant_types)?
            .iter()
            .map(|g| GrantType::parse(g).ok_or_else(|| error::corrupt(format!("client {id} has grant {g:?}"))))
            .collect::<Result<_, _>>()?;
        Ok(OAuthClient {
            kind: ClientKind::parse(&self.kind)
                .ok_or_else(|| error::corrupt(format!("client {id} has kind {:?}", self.kind)))?,
            auth_method: TokenAuthMethod::parse(&self.auth_method)
                .ok_or_else(|| error::corrupt(format!("client {id} has method {:?}", self.auth_method)))?,
            redirect_uris: list(&id, "redirect_uris", &self.redirect_uris)?,
            post_logout_redirect_uris: list(&id, "post_logout_redirect_uris", &self.post_logout_redirect_uris)?,
            scopes: list(&id, "scopes", &self.scopes)?,
            grant_types,
            name: self.name,
            secret_hash: self.secret_hash,
            hash_key_id: self.hash_key_id.map(Stored::into_domain).transpose()?,
            jwks: self.jwks,
            jwks_uri: self.jwks_uri,
            created_at: self.created_at.into_domain()?,
            created_by: self.created_by.map(Stored::into_domain).transpose()?.map(UserId::from_uuid),
            client_id: id,
        })
    }
}

#[async_trait]
impl OAuthClientStore for SqlStore {
    async fn insert_oauth_client(&self, client: &OAuthClient) -> Result<(), StoreError> {
        let grants: Vec<String> = client.grant_types.iter().map(|g| g.as_str().to_owned()).collect();
        on_pool!(self.pool(), |pool, d| {
            sqlx::query(INSERT)
                .bind(&client.client_id)
                .bind(&client.name)
                .bind(client.kind.as_str())
                .bind(client.secret_hash.as_deref())
                .bind(client.hash_key_id.map(d::id))
                .bind(json(&client.redirect_uris))
                .bind(json(&client.post_logout_redirect_uris))
                .bind(json(&grants))
                .bind(json(&client.scopes))
                .bind(client.auth_method.as_str())
                .bind(client.jwks.as_deref())
                .bind(client.jwks_uri.as_deref())
                .bind(d::instant(client.created_at)?)
                .bind(client.created_by.map(|u| d::id(u.as_uuid())))
                .execute(pool)
                .await
                .map_err(error::sql)?;
            Ok(())
        })
    }

    async fn oauth_client(&self, client_id: &str) -> Result<Option<OAuthClient>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let row = sqlx::QueryBuilder::new(COLUMNS)
                .push(" WHERE client_id = ")
                .push_bind(client_id)
                .build_query_as::<ClientRow<d::StoredId, d::StoredInstant>>()
                .fetch_optional(pool)
                .await
                .map_err(error::sql)?;
            row.map(ClientRow::into_domain).transpose()
        })
    }

    async fn oauth_clients(&self, after: Option<&str>, limit: u32) -> Result<Vec<OAuthClient>, StoreError> {
        on_pool!(self.pool(), |pool, d| {
            let mut query = sqlx::QueryBuilder::new(COLUMNS);
            if let Some(after) = after {
                query.push(" WHERE client_id").push(d::BYTE_ORDER).push(" > ").push_bind(after);
            }
            let rows = query
                .push(" ORDER BY client_id")
                .push(d::BYTE_ORDER)
                .push(" LIMIT ")
                .push_bind(i64::from(limit))
                .build_query_as::<ClientRow<d::StoredId, d::StoredInstant>>()
                .fetch_all(pool)
                .await
                .map_err(error::sql)?;
            rows.into_iter().map(ClientRow::into_domain).collect()
        })
    }

    async fn delete_oauth_client(&self, client_id: &str) -> Result<bool, StoreError> {
        let deleted = on_pool!(self.pool(), |pool, _d| {
            sqlx::query(DELETE).bind(client_id).execute(pool).await.map_err(error::sql)?.rows_affected()
        });
        Ok(deleted == 1)
    }
}
