-- A schedule's description, for the people reading schedule lists.
ALTER TABLE {schema}.schedules ADD COLUMN description text;
