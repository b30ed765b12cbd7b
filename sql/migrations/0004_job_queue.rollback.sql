DROP TABLE job_history;
DROP TABLE job_queue;
DROP TYPE job_type;
