//! docs/spec/rooms-api.md §3: the rooms table, visibility, roles, paging, bodies, settings.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::helpers::RoomsRequests as _;
use crate::helpers::{ALL_ROOMS, Options, assert_error, spawn_stack, spawn_stack_with};

const NIL: &str = "/00000000-0000-0000-0000-000000000000";

fn is_slug(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 3
        && [3, 4, 3]
            .iter()
            .zip(&parts)
            .all(|(n, p)| p.len() == *n && p.bytes().all(|b| b.is_ascii_lowercase()))
}

#[tokio::test]
async fn create_returns_201_with_location_and_the_room_shape() {
    let s = spawn_stack().await;
    let token = s.token_with(ALL_ROOMS).await;
    let r = s.post(&token, "", None).await;
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let room: Value = r.json().await.unwrap();
    let id = room["id"].as_str().unwrap();
    assert_eq!(
        location,
        format!("https://rooms.example.test/external-api/v1.0/rooms/{id}")
    );
    assert!(is_slug(room["slug"].as_str().unwrap()), "{room}");
    assert_eq!(room["name"], room["slug"]);
    assert_eq!(room["access_level"], "trusted");
    assert_eq!(room["configuration"], json!({}));
    let created = room["created_at"].as_str().unwrap();
    assert!(
        created.ends_with('Z') && created.split('.').nth(1).unwrap().len() == 7,
        "{created}"
    );
    let keys: HashSet<&str> = room
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        HashSet::from([
            "id",
            "name",
            "slug",
            "access_level",
            "configuration",
            "created_at",
            "role"
        ])
    );
    assert_eq!(room["role"], "owner");
}

#[tokio::test]
async fn create_takes_access_level_and_configuration_and_ignores_other_keys() {
    let s = spawn_stack().await;
    let token = s.token_with(ALL_ROOMS).await;
    let r = s.post(&token, "", Some(json!({"access_level": "restricted", "slug": "mine-mine-min", "pin_code": "1",
        "configuration": {"can_publish_sources": ["camera", "screen_share"], "everyone_can_mute": false}}))).await;
    assert_eq!(r.status(), 201);
    let room: Value = r.json().await.unwrap();
    assert_eq!(room["access_level"], "restricted");
    assert_ne!(room["slug"], "mine-mine-min");
    assert_eq!(
        room["configuration"],
        json!({"can_publish_sources": ["camera", "screen_share"], "everyone_can_mute": false})
    );
    for body in [
        json!({"configuration": {"other": 1}}),
        json!({"configuration": {"everyone_can_mute": "yes"}}),
        json!({"access_level": "public"}),
        json!({"access_level": "everyone"}),
        json!([]),
    ] {
        assert_error(s.post(&token, "", Some(body)).await, 400, "invalid_request").await;
    }
}

#[tokio::test]
async fn public_rooms_need_the_setting() {
    let s = spawn_stack_with(Options {
        rooms: Box::new(|c| c.rooms.allow_public_access = true),
    })
    .await;
    let token = s.token_with(ALL_ROOMS).await;
    let r = s
        .post(&token, "", Some(json!({"access_level": "public"})))
        .await;
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn retrieve_update_delete_round_trip() {
    let s = spawn_stack().await;
    let token = s.token_with(ALL_ROOMS).await;
    let room = s.create_room(&token).await;
    let path = format!("/{}", room["id"].as_str().unwrap());
    let got: Value = s.get(&token, &path).await.json().await.unwrap();
    assert_eq!(got, room);
    let r = s
        .patch(
            &token,
            &path,
            json!({"access_level": "restricted", "configuration": {"everyone_can_mute": true}}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let patched: Value = r.json().await.unwrap();
    assert_eq!(patched["access_level"], "restricted");
    assert_eq!(patched["configuration"], json!({"everyone_can_mute": true}));
    // configuration replaces the whole object.
    let r = s
        .patch(
            &token,
            &path,
            json!({"configuration": {"can_publish_sources": ["microphone"]}}),
        )
        .await;
    let patched: Value = r.json().await.unwrap();
    assert_eq!(
        patched["configuration"],
        json!({"can_publish_sources": ["microphone"]})
    );
    assert_eq!(patched["access_level"], "restricted");
    assert_eq!(
        s.get(&token, &path).await.json::<Value>().await.unwrap(),
        patched
    );
    for body in [
        json!({"access_level": null}),
        json!({"configuration": null}),
        json!({"configuration": []}),
    ] {
        assert_error(s.patch(&token, &path, body).await, 400, "invalid_request").await;
    }
    let r = s.delete(&token, &path).await;
    assert_eq!(r.status(), 204);
    assert_error(s.get(&token, &path).await, 404, "not_found").await;
    assert_error(s.delete(&token, &path).await, 404, "not_found").await;
}

#[tokio::test]
async fn every_row_of_the_table_needs_its_scope() {
    let s = spawn_stack().await;
    let owner = s.token_with(ALL_ROOMS).await;
    let room = s.create_room(&owner).await;
    let path = format!("/{}", room["id"].as_str().unwrap());
    // A token of the same user and application with every scope but one.
    for missing in [
        "rooms:list",
        "rooms:create",
        "rooms:retrieve",
        "rooms:update",
        "rooms:delete",
    ] {
        let scopes: Vec<&str> = ALL_ROOMS.split(' ').filter(|x| *x != missing).collect();
        let token = s.token_with(&scopes.join(" ")).await;
        let r = match missing {
            "rooms:list" => s.get(&token, "").await,
            "rooms:create" => s.post(&token, "", None).await,
            "rooms:retrieve" => s.get(&token, &path).await,
            "rooms:update" => s.patch(&token, &path, json!({})).await,
            _ => s.delete(&token, &path).await,
        };
        let body = assert_error(r, 403, "insufficient_scope").await;
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains(missing)
        );
    }
    // And with it, each succeeds.
    assert_eq!(s.get(&owner, "").await.status(), 200);
    assert_eq!(s.get(&owner, &path).await.status(), 200);
    assert_eq!(s.patch(&owner, &path, json!({})).await.status(), 200);
    assert_eq!(s.delete(&owner, &path).await.status(), 204);
    assert_eq!(s.post(&owner, "", None).await.status(), 201);
}

#[tokio::test]
async fn rooms_are_invisible_to_other_users_and_other_applications() {
    let s = spawn_stack().await;
    let app_a = s.client(ALL_ROOMS, &[]).await;
    let app_b = s.client(ALL_ROOMS, &[]).await;
    s.user("alice@example.com").await;
    s.user("bob@example.com").await;
    let alice_a = s.token(&app_a, "alice@example.com").await;
    let alice_b = s.token(&app_b, "alice@example.com").await;
    let bob_a = s.token(&app_a, "bob@example.com").await;
    let room = s.create_room(&alice_a).await;
    let path = format!("/{}", room["id"].as_str().unwrap());
    for other in [&alice_b, &bob_a] {
        let list: Value = s.get(other, "").await.json().await.unwrap();
        assert_eq!(list["count"], 0);
        assert_eq!(list["results"], json!([]));
        assert_error(s.get(other, &path).await, 404, "not_found").await;
        assert_error(
            s.patch(other, &path, json!({"access_level": "restricted"}))
                .await,
            404,
            "not_found",
        )
        .await;
        assert_error(s.delete(other, &path).await, 404, "not_found").await;
    }
    // The same 404 as a room that never existed: nothing leaks.
    let never = assert_error(s.get(&bob_a, NIL).await, 404, "not_found").await;
    let hidden = assert_error(s.get(&bob_a, &path).await, 404, "not_found").await;
    assert_eq!(never, hidden);
    assert_eq!(s.get(&alice_a, &path).await.status(), 200);
}

#[tokio::test]
async fn an_id_that_is_not_a_uuid_is_404() {
    let s = spawn_stack().await;
    let token = s.token_with(ALL_ROOMS).await;
    assert_error(s.get(&token, "/abc").await, 404, "not_found").await;
    assert_error(s.delete(&token, "/1").await, 404, "not_found").await;
}

#[tokio::test]
async fn weaker_roles_see_the_room_but_get_403_insufficient_role() {
    use rooms_api::rooms::entity::rooms;
    use rooms_api::rooms::store::{Role, grant_access};
    use sea_orm::EntityTrait;
    let s = spawn_stack().await;
    let app = s.client(ALL_ROOMS, &[]).await;
    s.user("owner@example.com").await;
    let member_id = s.user("member@example.com").await;
    let admin_id = s.user("admin@example.com").await;
    let owner = s.token(&app, "owner@example.com").await;
    let member = s.token(&app, "member@example.com").await;
    let admin = s.token(&app, "admin@example.com").await;
    let room = s.create_room(&owner).await;
    let id = uuid::Uuid::parse_str(room["id"].as_str().unwrap()).unwrap();
    let row = rooms::Entity::find_by_id(id)
        .one(&s.rooms.db)
        .await
        .unwrap()
        .unwrap();
    for (user, role) in [(member_id, Role::Member), (admin_id, Role::Admin)] {
        grant_access(&s.rooms.db, &row, &user, role).await.unwrap();
    }
    let path = format!("/{id}");
    assert_eq!(s.get(&member, &path).await.status(), 200);
    assert_eq!(
        s.get(&member, "").await.json::<Value>().await.unwrap()["count"],
        1
    );
    assert_error(
        s.patch(&member, &path, json!({})).await,
        403,
        "insufficient_role",
    )
    .await;
    assert_error(s.delete(&member, &path).await, 403, "insufficient_role").await;
    assert_eq!(
        s.patch(&admin, &path, json!({"access_level": "restricted"}))
            .await
            .status(),
        200
    );
    assert_error(s.delete(&admin, &path).await, 403, "insufficient_role").await;
    assert_eq!(s.delete(&owner, &path).await.status(), 204);
}

#[tokio::test]
async fn list_pages_newest_first_with_absolute_links() {
    let s = spawn_stack().await;
    let token = s.token_with(ALL_ROOMS).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(
            s.create_room(&token).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        s.clock.advance(chrono::TimeDelta::milliseconds(3));
    }
    ids.reverse();
    let page1: Value = s
        .get(&token, "?page=1&page_size=2")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page1["count"], 5);
    assert_eq!(page1["previous"], Value::Null);
    assert_eq!(
        page1["next"],
        "https://rooms.example.test/external-api/v1.0/rooms?page=2&page_size=2"
    );
    let got: Vec<&str> = page1["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, ids[..2].to_vec());
    let page3: Value = s
        .get(&token, "?page=3&page_size=2")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page3["next"], Value::Null);
    assert_eq!(
        page3["previous"],
        "https://rooms.example.test/external-api/v1.0/rooms?page=2&page_size=2"
    );
    assert_eq!(page3["results"][0]["id"], ids[4]);
    assert_error(s.get(&token, "?page=4&page_size=2").await, 404, "not_found").await;
    for bad in [
        "?page=0",
        "?page=x",
        "?page_size=0",
        "?page_size=101",
        "?page=-1",
        "?page_size=1.5",
        "?cursor=garbage",
        "?page=1&cursor=djE6MTox",
        // Well-formed, but a time PostgreSQL can't hold (year -253,000): refused, never a 500.
        "?cursor=djE6LTgwMDAwMDAwMDAwMDAwMDAwMDA6MDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDA6YQ",
    ] {
        let body = assert_error(s.get(&token, bad).await, 400, "invalid_request").await;
        assert!(body["fields"].is_object(), "{bad}");
    }
    let default: Value = s.get(&token, "/").await.json().await.unwrap();
    assert_eq!(default["results"].as_array().unwrap().len(), 5);
    // The Host header never shapes the links.
    let r = s
        .client
        .get(s.rooms("?page_size=1"))
        .bearer_auth(&token)
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    let page: Value = r.json().await.unwrap();
    assert!(
        page["next"]
            .as_str()
            .unwrap()
            .starts_with("https://rooms.example.test/")
    );
}

/// The query string of a `next`/`previous` link, to send back as is.
fn link_query(link: &Value) -> String {
    let url = link.as_str().expect("a link");
    let at = url.find('?').expect("a query");
    assert!(url.starts_with("https://rooms.example.test/external-api/v1.0/rooms?"));
    url[at..].to_owned()
}

fn result_ids(page: &Value) -> Vec<String> {
    page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn cursor_links_walk_the_list_both_ways_and_survive_deletions() {
    let s = spawn_stack().await;
    let app = s.client(ALL_ROOMS, &[]).await;
    s.user("walker@example.com").await;
    s.user("other@example.com").await;
    let token = s.token(&app, "walker@example.com").await;
    // Pairs of rooms created in the same microsecond: the id breaks the tie.
    for _ in 0..4 {
        s.create_room(&token).await;
        s.create_room(&token).await;
        s.clock.advance(chrono::TimeDelta::milliseconds(3));
    }
    s.create_room(&token).await;
    let all = result_ids(
        &s.get(&token, "?page=1&page_size=100")
            .await
            .json()
            .await
            .unwrap(),
    );
    assert_eq!(all.len(), 9);

    // Forward: the default first page carries a cursor link, never a page number.
    let mut page: Value = s.get(&token, "?page_size=4").await.json().await.unwrap();
    assert_eq!(page["count"], 9);
    assert_eq!(page["previous"], Value::Null);
    let mut forward = vec![result_ids(&page)];
    while !page["next"].is_null() {
        let q = link_query(&page["next"]);
        assert!(q.contains("cursor=") && !q.contains("page="), "{q}");
        page = s.get(&token, &q).await.json().await.unwrap();
        assert_eq!(page["count"], 9);
        forward.push(result_ids(&page));
    }
    assert_eq!(forward.iter().map(Vec::len).collect::<Vec<_>>(), [4, 4, 1]);
    assert_eq!(forward.concat(), all);

    // Backward from the last page gives the same pages.
    let mut back = vec![];
    while !page["previous"].is_null() {
        page = s
            .get(&token, &link_query(&page["previous"]))
            .await
            .json()
            .await
            .unwrap();
        back.push(result_ids(&page));
    }
    assert_eq!(back, vec![forward[1].clone(), forward[0].clone()]);
    assert_eq!(page["previous"], Value::Null);

    // A cursor stays valid when its own room is deleted; the count follows.
    let second: Value = s.get(&token, "?page_size=4").await.json().await.unwrap();
    let next = link_query(&second["next"]);
    assert_eq!(
        s.delete(&token, &format!("/{}", all[3])).await.status(),
        204
    );
    let after: Value = s.get(&token, &next).await.json().await.unwrap();
    assert_eq!(result_ids(&after), all[4..8].to_vec());
    assert_eq!(after["count"], 8);

    // Another user of the same application sees none of it.
    let other = s.token(&app, "other@example.com").await;
    let theirs: Value = s.get(&other, "?page_size=4").await.json().await.unwrap();
    assert_eq!(
        theirs,
        json!({"count": 0, "next": null, "previous": null, "results": []})
    );
}

#[tokio::test]
async fn an_empty_first_page_is_200() {
    let s = spawn_stack().await;
    let token = s.token_with(ALL_ROOMS).await;
    let page: Value = s.get(&token, "").await.json().await.unwrap();
    assert_eq!(
        page,
        json!({"count": 0, "next": null, "previous": null, "results": []})
    );
}

#[tokio::test]
async fn concurrent_creations_lose_no_room_and_share_no_slug_or_pin() {
    let s = spawn_stack_with(Options {
        rooms: Box::new(|c| c.rooms.telephony_enabled = true),
    })
    .await;
    let token = s.token_with(ALL_ROOMS).await;
    let responses = futures::future::join_all((0..24).map(|_| s.post(&token, "", None))).await;
    let mut slugs = HashSet::new();
    let mut pins = HashSet::new();
    for r in responses {
        assert_eq!(r.status(), 201);
        let room: Value = r.json().await.unwrap();
        slugs.insert(room["slug"].as_str().unwrap().to_owned());
        pins.insert(room["telephony"]["pin_code"].as_str().unwrap().to_owned());
    }
    assert_eq!(slugs.len(), 24);
    assert_eq!(pins.len(), 24);
    let list: Value = s.get(&token, "?page_size=100").await.json().await.unwrap();
    assert_eq!(list["count"], 24);
}

#[tokio::test]
async fn url_and_telephony_follow_the_settings() {
    let s = spawn_stack_with(Options {
        rooms: Box::new(|c| {
            c.rooms.base_url = Some("https://meet.example.com/".into());
            c.rooms.telephony_enabled = true;
            c.rooms.telephony_phone_number = Some("+1-555-0100".into());
            c.rooms.pin_length = 8;
        }),
    })
    .await;
    let token = s.token_with(ALL_ROOMS).await;
    let room = s.create_room(&token).await;
    assert_eq!(
        room["url"],
        format!(
            "https://meet.example.com/{}",
            room["slug"].as_str().unwrap()
        )
    );
    let t = &room["telephony"];
    assert_eq!(t["enabled"], true);
    assert_eq!(t["phone_number"], "+1-555-0100");
    assert_eq!(t["default_country"], "US");
    let pin = t["pin_code"].as_str().unwrap();
    assert_eq!(pin.len(), 8);
    assert!(pin.bytes().all(|b| b.is_ascii_digit()));
}

#[tokio::test]
async fn trailing_slashes_are_the_same_route() {
    let s = spawn_stack().await;
    let token = s.token_with(ALL_ROOMS).await;
    let room = s.create_room(&token).await;
    assert_eq!(s.get(&token, "/").await.status(), 200);
    assert_eq!(
        s.get(&token, &format!("/{}/", room["id"].as_str().unwrap()))
            .await
            .status(),
        200
    );
    assert_eq!(s.post(&token, "/", None).await.status(), 201);
}

#[tokio::test]
async fn external_api_can_be_disabled() {
    let s = spawn_stack_with(Options {
        rooms: Box::new(|c| c.external_api_enabled = false),
    })
    .await;
    let token = s.token_with(ALL_ROOMS).await;
    assert_error(s.get(&token, "").await, 404, "not_found").await;
    assert_eq!(
        s.client
            .get(format!("{}/healthz", s.rooms_url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn concurrent_deletes_of_one_room_count_it_once() {
    let s = spawn_stack().await;
    let token = s.token_with(ALL_ROOMS).await;
    let keep = s.create_room(&token).await;
    for _ in 0..5 {
        let gone = s.create_room(&token).await;
        let path = format!("/{}", gone["id"].as_str().unwrap());
        let answers = futures::future::join_all((0..8).map(|_| s.delete(&token, &path))).await;
        let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
        assert_eq!(
            statuses.iter().filter(|s| **s == 204).count(),
            1,
            "exactly one delete wins: {statuses:?}"
        );
        assert!(
            statuses.iter().all(|s| matches!(s, 204 | 404)),
            "the others find nothing: {statuses:?}"
        );
    }
    let page: Value = s.get(&token, "").await.json().await.unwrap();
    assert_eq!(page["count"], 1, "{page}");
    assert_eq!(page["results"][0]["id"], keep["id"]);
}
