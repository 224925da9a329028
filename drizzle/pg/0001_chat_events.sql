CREATE TABLE "chat_events" (
	"chat_id" text NOT NULL,
	"first_seq" bigint NOT NULL,
	"last_seq" bigint NOT NULL,
	"frames" text NOT NULL,
	CONSTRAINT "chat_events_chat_id_first_seq_pk" PRIMARY KEY("chat_id","first_seq")
);
--> statement-breakpoint
CREATE INDEX "chat_events_last_idx" ON "chat_events" USING btree ("chat_id","last_seq");