-- Target of mappings/fossawork_v1/user_activities.toml: data/users/{id}/activity_log.json,
-- one row per element; activity_id is the per-user `id` V1 gave each log entry.
CREATE TABLE user_activities (
    user_id         VARCHAR(64)  NOT NULL,
    activity_id     INTEGER      NOT NULL,
    action          VARCHAR(64)  NOT NULL,
    occurred_at     TIMESTAMP    NOT NULL,
    details         TEXT         NULL,
    PRIMARY KEY (user_id, activity_id)
);

CREATE INDEX user_activities_occurred_at_idx ON user_activities (occurred_at);
