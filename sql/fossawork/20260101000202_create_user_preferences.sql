-- Target of mappings/fossawork_v1/user_preferences.toml: data/users/{id}/email_settings.json.
CREATE TABLE user_preferences (
    user_id         VARCHAR(64)  NOT NULL,
    enabled         BOOLEAN      NOT NULL,
    frequency       VARCHAR(16)  NOT NULL,
    recipient_email VARCHAR(255) NULL,
    send_time       VARCHAR(5)   NULL,
    timezone        VARCHAR(64)  NULL,
    settings_json   TEXT         NULL,
    PRIMARY KEY (user_id)
);
