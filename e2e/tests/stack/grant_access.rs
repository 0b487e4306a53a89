//! Sharing a room by e-mail (docs/spec/rooms-api.md §3a): the rooms API resolves the grantee at
//! the real auth-server (`POST /oauth/resolve-user`) under the calling application's allowlist
//! and user-creation policy, then gives or takes the role. Both databases (the postgres profile).

use serde_json::{Value, json};

use crate::helpers::*;

struct Shared {
    s: Stack,
    app: Client,
    ann: String,
    bob: String,
}

async fn stack_with(allow_user_creation: bool) -> Shared {
    let s = spawn_stack_with(Options {
        revocation_feed: true,
        allow_user_creation,
        ..Default::default()
    })
    .await;
    s.poll_feed().await;
    let app = s.client(SHARING, &["example.com"]).await;
    s.user("ann@example.com").await;
    s.user("bob@example.com").await;
    let ann = s.token(&app, "ann@example.com").await;
    let bob = s.token(&app, "bob@example.com").await;
    Shared { s, app, ann, bob }
}

async fn stack() -> Shared {
    stack_with(false).await
}

impl Shared {
    /// A new room of Ann's: its id.
    async fn ann_room(&self) -> String {
        self.s.create_room(&self.ann).await["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn grant(&self, token: &str, room: &str, body: Value) -> reqwest::Response {
        self.s
            .post(token, &format!("/{room}/grant-access/"), Some(body))
            .await
    }

    async fn revoke(&self, token: &str, room: &str, email: &str) -> reqwest::Response {
        self.s
            .delete(token, &format!("/{room}/accesses/{email}"))
            .await
    }

    /// `token`'s list, as (room id, role) pairs, and its count.
    async fn list(&self, token: &str) -> (Vec<(String, String)>, u64) {
        let r = self.s.get(token, "").await;
        assert_eq!(r.status(), 200);
        let page: Value = r.json().await.unwrap();
        let rooms = page["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["id"].as_str().unwrap().to_owned(),
                    r["role"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        (rooms, page["count"].as_u64().unwrap())
    }
}

async fn json(r: reqwest::Response, status: u16) -> Value {
    assert_eq!(r.status(), status);
    r.json().await.unwrap()
}

#[tokio::test]
async fn a_grant_gives_the_grantee_the_room_in_their_list_with_their_role() {
    let t = stack().await;
    let room = t.s.create_room(&t.ann).await;
    assert_eq!(room["role"], "owner");
    let id = room["id"].as_str().unwrap();
    // Bob's empty list is read (and cached) before the grant.
    assert_eq!(t.list(&t.bob).await, (vec![], 0));
    let body = json(
        t.grant(
            &t.ann,
            id,
            json!({"email": "Bob@Example.com", "role": "member"}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(
        body,
        json!({"email": "Bob@Example.com", "role": "member", "created": true,
               "provisional_user_created": false})
    );
    assert_eq!(
        t.list(&t.bob).await,
        (vec![(id.to_owned(), "member".to_owned())], 1)
    );
    let seen = json(t.s.get(&t.bob, &format!("/{id}")).await, 200).await;
    assert_eq!(seen["role"], "member");
    assert_eq!(
        t.list(&t.ann).await,
        (vec![(id.to_owned(), "owner".to_owned())], 1)
    );
    // A member may see the room, not change it.
    assert_error(
        t.s.patch(
            &t.bob,
            &format!("/{id}"),
            json!({"access_level": "restricted"}),
        )
        .await,
        403,
        "insufficient_role",
    )
    .await;
}

#[tokio::test]
async fn a_role_is_raised_at_once_and_lowered_only_with_replace() {
    let t = stack().await;
    let id = t.ann_room().await;
    json(
        t.grant(
            &t.ann,
            &id,
            json!({"email": "bob@example.com", "role": "member"}),
        )
        .await,
        201,
    )
    .await;
    // "admin" is upstream's name for administrator: accepted as a synonym.
    let up = json(
        t.grant(
            &t.ann,
            &id,
            json!({"email": "bob@example.com", "role": "admin"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(up["role"], "administrator");
    assert_eq!(up["created"], false);
    // The same role again: nothing changes, 200.
    let same = json(
        t.grant(
            &t.ann,
            &id,
            json!({"email": "bob@example.com", "role": "administrator"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(same["role"], "administrator");
    // Lower: never silently.
    let body = assert_error(
        t.grant(
            &t.ann,
            &id,
            json!({"email": "bob@example.com", "role": "member"}),
        )
        .await,
        409,
        "conflict",
    )
    .await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("replace"),
        "{body}"
    );
    assert_eq!(t.list(&t.bob).await.0[0].1, "administrator");
    let down = json(
        t.grant(
            &t.ann,
            &id,
            json!({"email": "bob@example.com", "role": "member", "replace": true}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(down["role"], "member");
    assert_eq!(t.list(&t.bob).await.0[0].1, "member");
}

#[tokio::test]
async fn the_owner_keeps_the_room_whoever_asks() {
    let t = stack().await;
    let id = t.ann_room().await;
    // The owner naming their own e-mail is told so; nothing changes.
    let own = json(
        t.grant(
            &t.ann,
            &id,
            json!({"email": "ann@example.com", "role": "member"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(own["role"], "owner");
    assert!(own["detail"].is_string());
    // An administrator can neither lower nor remove the room's only owner.
    json(
        t.grant(
            &t.ann,
            &id,
            json!({"email": "bob@example.com", "role": "administrator"}),
        )
        .await,
        201,
    )
    .await;
    assert_error(
        t.grant(
            &t.bob,
            &id,
            json!({"email": "ann@example.com", "role": "member", "replace": true}),
        )
        .await,
        409,
        "conflict",
    )
    .await;
    assert_error(
        t.revoke(&t.bob, &id, "ann@example.com").await,
        409,
        "conflict",
    )
    .await;
    assert_eq!(t.list(&t.ann).await.0[0].1, "owner");
    // Deletion stays the owner's alone.
    assert_error(
        t.s.delete(&t.bob, &format!("/{id}")).await,
        403,
        "insufficient_role",
    )
    .await;
}

#[tokio::test]
async fn only_the_owner_and_administrators_share_and_a_room_out_of_sight_is_404() {
    let t = stack().await;
    t.s.user("carol@example.com").await;
    let carol = t.s.token(&t.app, "carol@example.com").await;
    let id = t.ann_room().await;
    let to_carol = json!({"email": "carol@example.com", "role": "member"});
    // No access at all: 404, as for a room that does not exist.
    let missing = uuid::Uuid::new_v4().to_string();
    for room in [id.as_str(), missing.as_str(), "not-a-uuid"] {
        assert_error(
            t.grant(&carol, room, to_carol.clone()).await,
            404,
            "not_found",
        )
        .await;
    }
    // The room through another application: 404 too.
    let other = t.s.client(SHARING, &["example.com"]).await;
    let ann_elsewhere = t.s.token(&other, "ann@example.com").await;
    assert_error(
        t.grant(&ann_elsewhere, &id, to_carol.clone()).await,
        404,
        "not_found",
    )
    .await;
    // Without the scope: 403 before anything is looked at.
    let no_scope = t.s.client(ALL_ROOMS, &["example.com"]).await;
    let ann_no_scope = t.s.token(&no_scope, "ann@example.com").await;
    assert_error(
        t.grant(&ann_no_scope, &missing, to_carol.clone()).await,
        403,
        "insufficient_scope",
    )
    .await;
    // A member may not share.
    json(
        t.grant(
            &t.ann,
            &id,
            json!({"email": "bob@example.com", "role": "member"}),
        )
        .await,
        201,
    )
    .await;
    assert_error(
        t.grant(&t.bob, &id, to_carol.clone()).await,
        403,
        "insufficient_role",
    )
    .await;
    assert_error(
        t.revoke(&t.bob, &id, "ann@example.com").await,
        403,
        "insufficient_role",
    )
    .await;
    // An administrator may.
    json(
        t.grant(
            &t.ann,
            &id,
            json!({"email": "bob@example.com", "role": "administrator"}),
        )
        .await,
        200,
    )
    .await;
    json(t.grant(&t.bob, &id, to_carol).await, 201).await;
    assert_eq!(t.list(&carol).await.0.len(), 1);
}

#[tokio::test]
async fn the_grantee_is_one_of_the_applications_users_and_bodies_are_checked() {
    let t = stack().await;
    let id = t.ann_room().await;
    t.s.user("eve@other.org").await;
    for (body, field) in [
        // Outside the application's domains (the user exists): refused like at the token endpoint.
        (json!({"email": "eve@other.org", "role": "member"}), "email"),
        // Nobody, and this server creates no users.
        (
            json!({"email": "new@example.com", "role": "member"}),
            "email",
        ),
        (json!({"email": "not an e-mail", "role": "member"}), "email"),
        (json!({"role": "member"}), "email"),
        (json!({"email": "bob@example.com", "role": "owner"}), "role"),
        (json!({"email": "bob@example.com", "role": "boss"}), "role"),
        (json!({"email": "bob@example.com"}), "role"),
        (
            json!({"email": "bob@example.com", "role": "member", "replace": "yes"}),
            "replace",
        ),
    ] {
        let e = assert_error(
            t.grant(&t.ann, &id, body.clone()).await,
            400,
            "invalid_request",
        )
        .await;
        assert!(e["fields"][field].is_array(), "{body}: {e}");
    }
    // A bad body is judged before the room is looked up (400, not 404).
    assert_error(
        t.grant(
            &t.ann,
            &uuid::Uuid::new_v4().to_string(),
            json!({"role": "x"}),
        )
        .await,
        400,
        "invalid_request",
    )
    .await;
    assert_eq!(t.list(&t.ann).await.1, 1);
}

#[tokio::test]
async fn a_provisional_user_is_created_for_a_grant_when_the_application_may_create_users() {
    let t = stack_with(true).await;
    let id = t.ann_room().await;
    let body = json(
        t.grant(
            &t.ann,
            &id,
            json!({"email": "new@example.com", "role": "member"}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(body["provisional_user_created"], true);
    // Never for a domain the application may not act for.
    assert_error(
        t.grant(
            &t.ann,
            &id,
            json!({"email": "new@other.org", "role": "member"}),
        )
        .await,
        400,
        "invalid_request",
    )
    .await;
    // The new user's first token, through the same application, lists the room.
    let new = t.s.token(&t.app, "new@example.com").await;
    assert_eq!(
        t.list(&new).await,
        (vec![(id.clone(), "member".to_owned())], 1)
    );
}

#[tokio::test]
async fn revoking_an_access_takes_the_room_out_of_the_grantees_sight() {
    let t = stack().await;
    let id = t.ann_room().await;
    json(
        t.grant(
            &t.ann,
            &id,
            json!({"email": "bob@example.com", "role": "member"}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(t.list(&t.bob).await.1, 1);
    let r = t.revoke(&t.ann, &id, "bob@example.com").await;
    assert_eq!(r.status(), 204);
    assert_eq!(t.list(&t.bob).await, (vec![], 0));
    assert_error(t.s.get(&t.bob, &format!("/{id}")).await, 404, "not_found").await;
    // Nothing more to take: 404, for a known user and for nobody alike.
    assert_error(
        t.revoke(&t.ann, &id, "bob@example.com").await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        t.revoke(&t.ann, &id, "ghost@example.com").await,
        404,
        "not_found",
    )
    .await;
    // The owner is still there.
    assert_eq!(t.list(&t.ann).await.1, 1);
}

#[tokio::test]
async fn a_slug_finds_the_one_room_the_caller_may_see_and_nothing_else() {
    let t = stack().await;
    let room = t.s.create_room(&t.ann).await;
    let (id, slug) = (room["id"].as_str().unwrap(), room["slug"].as_str().unwrap());
    let page = json(t.s.get(&t.ann, &format!("?slug={slug}")).await, 200).await;
    assert_eq!(page["count"], 1);
    assert_eq!(page["results"][0]["id"], id);
    assert!(page["next"].is_null() && page["previous"].is_null());
    // Another user's room and no room at all look the same: an empty page.
    for (token, slug) in [
        (&t.bob, slug),
        (&t.ann, "zzz-zzzz-zzz"),
        (&t.ann, &"a".repeat(300)),
    ] {
        let page = json(t.s.get(token, &format!("?slug={slug}")).await, 200).await;
        assert_eq!(
            page,
            json!({"count": 0, "next": null, "previous": null, "results": []})
        );
    }
    json(
        t.grant(
            &t.ann,
            id,
            json!({"email": "bob@example.com", "role": "member"}),
        )
        .await,
        201,
    )
    .await;
    let page = json(t.s.get(&t.bob, &format!("?slug={slug}")).await, 200).await;
    assert_eq!(page["results"][0]["role"], "member");
    assert_error(
        t.s.get(&t.ann, &format!("?slug={slug}&page=1")).await,
        400,
        "invalid_request",
    )
    .await;
}

#[tokio::test]
async fn sharing_is_503_while_the_auth_server_cannot_resolve_users() {
    let mut t = stack().await;
    let id = t.ann_room().await;
    t.s.stop_auth().await;
    assert_error(
        t.grant(
            &t.ann,
            &id,
            json!({"email": "bob@example.com", "role": "member"}),
        )
        .await,
        503,
        "temporarily_unavailable",
    )
    .await;
    // Without credentials for the auth-server, too.
    let s = spawn_stack().await;
    let app = s.client(SHARING, &["example.com"]).await;
    s.user("ann@example.com").await;
    let ann = s.token(&app, "ann@example.com").await;
    let id = s.create_room(&ann).await["id"].as_str().unwrap().to_owned();
    let r = s
        .post(
            &ann,
            &format!("/{id}/grant-access"),
            Some(json!({"email": "ann@example.com", "role": "member"})),
        )
        .await;
    assert_error(r, 503, "temporarily_unavailable").await;
}
