/** The fields of one update as both variants persist it (one `cards` UPDATE + one `card_events` INSERT). */
export interface UpdateRow {
  board: number;
  card: number;
  user: number;
  /** client message id */
  id: string;
  column: string;
  title: string;
  at: number;
  sentAt: number;
}
