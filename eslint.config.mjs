// typescript-eslint's recommended rules plus Pulumi's own lint for Output misuse.
import tseslint from "typescript-eslint";
import pulumi from "@pulumi/eslint-plugin";

export default tseslint.config(
    { ignores: ["node_modules/**", ".build/**", "dist/**", ".pulumi-state/**", "app/**", "eslint.config.mjs", "**/*.tmp.ts"] },
    ...tseslint.configs.recommended,
    {
        files: ["**/*.ts"],
        plugins: { "@pulumi": pulumi },
        // Pulumi's rule needs type information (it asks whether a template part is an Output).
        languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
        rules: {
            "@pulumi/no-output-in-template-literal": "error",
            "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
            "@typescript-eslint/no-require-imports": "off",
        },
    },
    {
        // toolchain/dist.cjs runs before anything is compiled: plain CommonJS.
        files: ["**/*.cjs"],
        rules: { "@typescript-eslint/no-require-imports": "off" },
    },
    {
        // Layers import downwards only: scripts/ are CLI entry points built on these, never a library for them.
        files: ["ops/**/*.ts", "stacks/**/*.ts", "components/**/*.ts", "infra/**/*.ts", "index.ts"],
        rules: {
            "no-restricted-imports": ["error", { patterns: [{ group: ["**/scripts/*", "**/scripts"], message: "ops/, stacks/, components/ and infra/ must not import from scripts/ (the CLI entry points): move the shared code down, e.g. into ops/." }] }],
        },
    },
);
