// Placeholder: schema to be written (see index.ts).
export {};
