export * from './artifacts.module.js';
