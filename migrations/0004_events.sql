-- Webhook endpoints made through the API (/v1/webhooks); those of the
-- config ([[webhooks]]) are not here.
--
-- secret: the endpoint's whsec_ signing secret itself, not a hash: pbxbridge
-- signs every request with it, and the CRM checks with the same secret (the
-- Standard Webhooks specification). Whoever can read this table can forge
-- requests to that CRM endpoint: grant it as the CRM's own secrets.
-- previous_secret signs too until previous_until (a rotation's overlap).
-- events: the types sent, comma-separated; empty: all.
-- disabled_reason: why it stopped (a 410 from the receiver, or an admin).
CREATE TABLE IF NOT EXISTS {webhooks} (
    id               VARCHAR(40)  NOT NULL PRIMARY KEY,
    url              TEXT         NOT NULL,
    events           TEXT         NOT NULL,
    secret           VARCHAR(128) NOT NULL,
    previous_secret  VARCHAR(128),
    previous_until   {ts},
    enabled          BOOLEAN      NOT NULL DEFAULT TRUE,
    disabled_reason  TEXT,
    created_at       {ts} NOT NULL,
    updated_at       {ts} NOT NULL
){opts};
