-- Target of mappings/fossawork_v1/users.toml: data/users/users.json of FossaWork V1.
-- id is the V1 folder name (md5 of the lower-cased email); new_id is the deterministic
-- UUID the new application uses.
CREATE TABLE users (
    id              VARCHAR(64)  NOT NULL,
    new_id          VARCHAR(36)  NOT NULL,
    username        VARCHAR(64)  NOT NULL,
    display_name    VARCHAR(255) NULL,
    email           VARCHAR(255) NOT NULL,
    role            VARCHAR(16)  NOT NULL,
    created_at      TIMESTAMP    NOT NULL,
    PRIMARY KEY (id)
);
