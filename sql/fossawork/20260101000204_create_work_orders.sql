-- Target of mappings/fossawork_v1/work_orders.toml: the `workOrders` array of
-- data/users/{id}/scraped_content.json, one row per work order.
CREATE TABLE work_orders (
    user_id         VARCHAR(64)   NOT NULL,
    work_order_id   VARCHAR(32)   NOT NULL,
    store_number    VARCHAR(16)   NULL,
    customer        VARCHAR(255)  NULL,
    city            VARCHAR(128)  NULL,
    status          VARCHAR(16)   NOT NULL,
    scheduled_date  DATE          NULL,
    amount          NUMERIC(12,2) NULL,
    service_count   INTEGER       NOT NULL,
    scraped_at      TIMESTAMP     NULL,
    PRIMARY KEY (user_id, work_order_id)
);

CREATE INDEX work_orders_scheduled_date_idx ON work_orders (scheduled_date);
