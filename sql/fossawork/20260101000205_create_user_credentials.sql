-- Target of mappings/fossawork_v1/user_credentials.toml: data/users/{id}/work_fossa_credentials.json.
-- V1 kept the WorkFossa login in plain text; here both values are Fernet tokens
-- (encrypt('FOSSAWORK_CREDENTIALS_KEY')), which the V2 application decrypts with the same key.
CREATE TABLE user_credentials (
    user_id             VARCHAR(64)  NOT NULL,
    service_name        VARCHAR(32)  NOT NULL,
    encrypted_username  TEXT         NOT NULL,
    encrypted_password  TEXT         NOT NULL,
    is_active           BOOLEAN      NOT NULL,
    is_verified         BOOLEAN      NOT NULL,
    updated_at          TIMESTAMP    NULL,
    PRIMARY KEY (user_id, service_name)
);
