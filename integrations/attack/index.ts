export * from './stix-types';
export * from './stix-parser';
export * from './stix-queries';
export * from './d3fend';
export * from './source';
