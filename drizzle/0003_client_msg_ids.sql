CREATE TABLE `client_msg_ids` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`chat_id` text NOT NULL,
	`client_msg_id` text NOT NULL,
	`accepted_at` integer NOT NULL,
	FOREIGN KEY (`chat_id`) REFERENCES `chats`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `client_msg_ids_chat_msg_idx` ON `client_msg_ids` (`chat_id`,`client_msg_id`);--> statement-breakpoint
CREATE INDEX `client_msg_ids_accepted_idx` ON `client_msg_ids` (`accepted_at`);