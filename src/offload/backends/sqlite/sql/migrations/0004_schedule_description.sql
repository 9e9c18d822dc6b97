-- A schedule's description, for the people reading schedule lists.
ALTER TABLE schedules ADD COLUMN description TEXT;
