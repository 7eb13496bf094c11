//! `#[derive(Params)]`: flatten a user struct or enum into its tensors and rebuild it.
//!
//! The generated impl visits every field in declaration order. Fields marked
//! `#[params(skip)]` are configuration: they are not visited and are cloned when the value is
//! rebuilt (so they must implement `Clone`). Generic type parameters get a `Params` bound.
//!
//! The generated code names `::adjoint::Params` and `::adjoint::Tensor`, so it works for users
//! of the `adjoint` facade. Crates that see adjoint under another name say which path to use
//! with a container attribute, `#[params(crate = adjoint_core)]` (inside `adjoint-core`
//! itself: `#[params(crate = crate)]`), as serde's `#[serde(crate = "…")]` does.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::{format_ident, quote};
use syn::{parse_macro_input, Data, DeriveInput, Fields};

/// Derive `adjoint::Params` for a struct (named, tuple or unit) or an enum.
///
/// Attributes: `#[params(skip)]` on a field (not visited, cloned on rebuild);
/// `#[params(crate = path)]` on the type (the path of the crate that defines `Params`,
/// default `::adjoint`).
#[proc_macro_derive(Params, attributes(params))]
pub fn derive_params(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(input) {
        Ok(ts) => ts.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn is_skipped(attrs: &[syn::Attribute]) -> syn::Result<bool> {
    let mut skip = false;
    for a in attrs {
        if a.path().is_ident("params") {
            a.parse_nested_meta(|m| {
                if m.path.is_ident("skip") {
                    skip = true;
                    Ok(())
                } else {
                    Err(m.error("unknown params field attribute; expected `skip`"))
                }
            })?;
        }
    }
    Ok(skip)
}

/// The crate path from `#[params(crate = path)]` on the type, `::adjoint` by default.
fn crate_path(attrs: &[syn::Attribute]) -> syn::Result<syn::Path> {
    let mut path: syn::Path = syn::parse_quote!(::adjoint);
    for a in attrs {
        if a.path().is_ident("params") {
            a.parse_nested_meta(|m| {
                if m.path.is_ident("crate") {
                    path = m.value()?.parse()?;
                    Ok(())
                } else {
                    Err(m.error("unknown params attribute on a type; expected `crate = path`"))
                }
            })?;
        }
    }
    Ok(path)
}

/// For a set of fields bound to identifiers `bindings`, the visit and rebuild code.
struct FieldCode {
    visit: TokenStream2,
    named: TokenStream2,
    buffers: TokenStream2,
    rebuilt: Vec<TokenStream2>,
}

fn field_code(k: &syn::Path, fields: &Fields, bindings: &[syn::Ident]) -> syn::Result<FieldCode> {
    let mut code = FieldCode {
        visit: TokenStream2::new(),
        named: TokenStream2::new(),
        buffers: TokenStream2::new(),
        rebuilt: Vec::new(),
    };
    for (i, (f, b)) in fields.iter().zip(bindings).enumerate() {
        if is_skipped(&f.attrs)? {
            code.rebuilt.push(quote! { ::core::clone::Clone::clone(#b) });
        } else {
            let name = match &f.ident {
                Some(id) => id.to_string().trim_start_matches("r#").to_string(),
                None => i.to_string(),
            };
            code.visit.extend(quote! { #k::Params::for_each_tensor(#b, f); });
            code.named.extend(quote! {
                #k::Params::for_each_named(#b, &#k::params::join_name(prefix, #name), f);
            });
            code.buffers.extend(quote! {
                #k::Params::for_each_buffer(#b, &#k::params::join_name(prefix, #name), f);
            });
            code.rebuilt.push(quote! { #k::Params::map_tensors(#b, f) });
        }
    }
    Ok(code)
}

fn bindings_for(fields: &Fields) -> Vec<syn::Ident> {
    fields
        .iter()
        .enumerate()
        .map(|(i, f)| match &f.ident {
            Some(id) => format_ident!("__f_{}", id),
            None => format_ident!("__f_{}", i),
        })
        .collect()
}

fn pattern(path: TokenStream2, fields: &Fields, bindings: &[syn::Ident]) -> TokenStream2 {
    match fields {
        Fields::Named(_) => {
            let names = fields.iter().map(|f| f.ident.clone().unwrap());
            quote! { #path { #(#names: #bindings),* } }
        }
        Fields::Unnamed(_) => quote! { #path ( #(#bindings),* ) },
        Fields::Unit => quote! { #path },
    }
}

fn construct(path: TokenStream2, fields: &Fields, values: &[TokenStream2]) -> TokenStream2 {
    match fields {
        Fields::Named(_) => {
            let names = fields.iter().map(|f| f.ident.clone().unwrap());
            quote! { #path { #(#names: #values),* } }
        }
        Fields::Unnamed(_) => quote! { #path ( #(#values),* ) },
        Fields::Unit => quote! { #path },
    }
}

fn expand(input: DeriveInput) -> syn::Result<TokenStream2> {
    let name = &input.ident;
    let k = crate_path(&input.attrs)?;
    let mut generics = input.generics.clone();
    for tp in generics.type_params_mut() {
        tp.bounds.push(syn::parse_quote!(#k::Params));
    }
    let (impl_g, ty_g, where_c) = generics.split_for_impl();
    let (visit_body, named_body, buffer_body, map_body) = match &input.data {
        Data::Struct(s) => {
            let b = bindings_for(&s.fields);
            let c = field_code(&k, &s.fields, &b)?;
            let pat = pattern(quote!(Self), &s.fields, &b);
            let cons = construct(quote!(Self), &s.fields, &c.rebuilt);
            let (visit, named, buffers) = (c.visit, c.named, c.buffers);
            (
                quote! { let #pat = self; #visit },
                quote! { let #pat = self; #named },
                quote! { let #pat = self; #buffers },
                quote! { let #pat = self; #cons },
            )
        }
        Data::Enum(e) => {
            let mut visit_arms = TokenStream2::new();
            let mut named_arms = TokenStream2::new();
            let mut buffer_arms = TokenStream2::new();
            let mut map_arms = TokenStream2::new();
            for v in &e.variants {
                let vn = &v.ident;
                let b = bindings_for(&v.fields);
                let c = field_code(&k, &v.fields, &b)?;
                let pat = pattern(quote!(Self::#vn), &v.fields, &b);
                let cons = construct(quote!(Self::#vn), &v.fields, &c.rebuilt);
                let (visit, named, buffers) = (c.visit, c.named, c.buffers);
                visit_arms.extend(quote! { #pat => { #visit } });
                named_arms.extend(quote! { #pat => { #named } });
                buffer_arms.extend(quote! { #pat => { #buffers } });
                map_arms.extend(quote! { #pat => #cons, });
            }
            (
                quote! { #[allow(unreachable_code)] match self { #visit_arms } },
                quote! { #[allow(unreachable_code)] match self { #named_arms } },
                quote! { #[allow(unreachable_code)] match self { #buffer_arms } },
                quote! { #[allow(unreachable_code)] match self { #map_arms } },
            )
        }
        Data::Union(u) => {
            return Err(syn::Error::new(u.union_token.span, "Params cannot be derived for unions"))
        }
    };
    Ok(quote! {
        impl #impl_g #k::Params for #name #ty_g #where_c {
            #[allow(unused_variables)]
            fn for_each_tensor(&self, f: &mut dyn FnMut(&#k::Tensor)) {
                #visit_body
            }
            #[allow(unused_variables)]
            fn for_each_named(&self, prefix: &str, f: &mut dyn FnMut(&str, &#k::Tensor)) {
                #named_body
            }
            #[allow(unused_variables)]
            fn for_each_buffer(&self, prefix: &str, f: &mut dyn FnMut(&str, &#k::params::Buffer)) {
                #buffer_body
            }
            #[allow(unused_variables)]
            fn map_tensors(&self, f: &mut dyn FnMut(&#k::Tensor) -> #k::Tensor) -> Self {
                #map_body
            }
        }
    })
}
