-- Target of mappings/fossawork_v1/user_dispenser_data.toml: data/users/{id}/dispenser_store.json,
-- one row per member of its `dispenserData` object (keyed by work order id).
CREATE TABLE user_dispenser_data (
    user_id          VARCHAR(64)  NOT NULL,
    work_order_id    VARCHAR(32)  NOT NULL,
    visit_id         VARCHAR(32)  NULL,
    dispenser_count  INTEGER      NOT NULL,
    dispensers       TEXT         NULL,
    updated_at       TIMESTAMP    NULL,
    PRIMARY KEY (user_id, work_order_id)
);
