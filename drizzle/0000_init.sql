CREATE TABLE `chats` (
	`id` text PRIMARY KEY NOT NULL,
	`title` text,
	`preview` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	`metadata` text NOT NULL,
	`last_seq` integer NOT NULL,
	`agent` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `chats_updated_idx` ON `chats` (`updated_at`);--> statement-breakpoint
CREATE TABLE `turns` (
	`id` text PRIMARY KEY NOT NULL,
	`chat_id` text NOT NULL,
	`status` text NOT NULL,
	`started_at` integer NOT NULL,
	`ended_at` integer,
	`latency_ms` integer,
	`error` text,
	FOREIGN KEY (`chat_id`) REFERENCES `chats`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `turns_chat_idx` ON `turns` (`chat_id`);--> statement-breakpoint
CREATE INDEX `turns_status_idx` ON `turns` (`status`);