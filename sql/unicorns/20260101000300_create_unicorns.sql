-- Target of mappings/unicorn_activities.toml: the DynamoDB table `unicorn_activities`
-- (partition key `name`, attribute `activities`: a list of {activity, timestamp}).
CREATE TABLE unicorns (
    name              VARCHAR(64)  NOT NULL,
    activity_count    INTEGER      NOT NULL,
    first_activity_at TIMESTAMP    NULL,
    PRIMARY KEY (name)
);

CREATE TABLE unicorn_activities (
    name              VARCHAR(64)  NOT NULL,
    seq               INTEGER      NOT NULL,
    activity          VARCHAR(255) NOT NULL,
    occurred_at       TIMESTAMP    NULL,
    PRIMARY KEY (name, seq)
);

CREATE INDEX unicorn_activities_activity_idx ON unicorn_activities (activity);
