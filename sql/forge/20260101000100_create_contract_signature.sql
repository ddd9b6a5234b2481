-- Target of mappings/forge_signatures.toml and mappings/forge_signatures_dirty.toml:
-- the Forge custom-entity KVS `signature` entities, one contract per entity and one
-- signature row per element of its `signatures` array.
CREATE TABLE contract (
    hash            VARCHAR(64)  NOT NULL,
    page_id         BIGINT       NOT NULL,
    created_at      TIMESTAMP    NOT NULL,
    last_modified   TIMESTAMP    NOT NULL,
    deleted_at      TIMESTAMP    NULL,
    signature_count INTEGER      NOT NULL,
    PRIMARY KEY (hash)
);

CREATE TABLE signature (
    contract_hash   VARCHAR(64)  NOT NULL,
    account_id      VARCHAR(128) NOT NULL,
    signed_at       TIMESTAMP    NULL,
    PRIMARY KEY (contract_hash, account_id)
);

CREATE INDEX signature_account_id_idx ON signature (account_id);
