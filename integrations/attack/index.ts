export * from './stix';
export * from './d3fend';
export * from './source';
