//! `#[derive(Module)]`: the parameter, buffer and training-mode visitors of a model struct,
//! generated from its fields so names cannot drift from the structure.
//!
//! ```ignore
//! use wengert::prelude::*;
//!
//! #[derive(Module)]
//! struct Mlp {
//!     fc1: Linear,                    // parameters "fc1.weight", "fc1.bias"
//!     blocks: Vec<Linear>,            // "blocks.0.weight", ...
//!     norm: Option<LayerNorm>,        // "norm.weight" when Some
//!     #[module(rename = "LayerNorm")]
//!     ln: LayerNorm,                  // "LayerNorm.weight" (Hugging Face style names)
//!     scale: Param,                   // a parameter of its own: "scale"
//!     #[module(buffer)]
//!     steps: Tensor<i64>,             // a buffer, saved and loaded with the parameters
//!     #[module(skip)]
//!     note: String,                   // not part of the model's state
//! }
//!
//! impl Mlp {
//!     // the derive's `Module::forward` calls this inherent method
//!     fn forward<'t>(&self, x: Var<'t, f32>) -> Var<'t, f32> { /* ... */ }
//! }
//! ```
//!
//! The element type is the struct's first type parameter when it has one (`struct Net<T:
//! Float>` gives `impl<T: Float> Module<T> for Net<T>`), else `f32`, or the type given by
//! `#[module(float = f64)]` on the struct. Fields are visited in declaration order.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{parse_macro_input, Data, DeriveInput, Fields, GenericArgument, Ident, LitStr, PathArguments, Type};

/// What the derive does with one field.
enum Kind {
    /// a module: its visitors under `name.`
    Module,
    /// `Vec<M>`: each module under `name.i.`
    List,
    /// `Option<M>`: the module under `name.` when `Some`
    Optional,
    /// `Param<T>`: a parameter named `name`
    Param,
    /// `Option<Param<T>>`: a parameter named `name` when `Some`
    OptionalParam,
    /// `#[module(buffer)]` on a `Tensor<T>`: a float buffer named `name`
    FloatBuffer,
    /// `#[module(buffer)]` on a `Tensor<i64>`: an integer buffer (a counter) named `name`
    IntBuffer,
}

struct FieldPlan {
    ident: Ident,
    name: String,
    kind: Kind,
    span: Span,
}

fn last_segment(ty: &Type) -> Option<(&Ident, Option<&Type>)> {
    let Type::Path(p) = ty else { return None };
    let seg = p.path.segments.last()?;
    let inner = match &seg.arguments {
        PathArguments::AngleBracketed(args) => args.args.iter().find_map(|a| match a {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        }),
        _ => None,
    };
    Some((&seg.ident, inner))
}

fn is_named(ty: Option<&Type>, name: &str) -> bool {
    ty.and_then(last_segment).is_some_and(|(id, _)| id == name)
}

/// The path of wengert-nn as the user's crate names it.
fn nn_path() -> TokenStream2 {
    use proc_macro_crate::{crate_name, FoundCrate};
    let to_ident = |name: &str| Ident::new(name, Span::call_site());
    match crate_name("wengert-nn") {
        Ok(FoundCrate::Itself) => return quote!(crate),
        Ok(FoundCrate::Name(name)) => {
            let id = to_ident(&name);
            return quote!(::#id);
        }
        Err(_) => {}
    }
    match crate_name("wengert") {
        Ok(FoundCrate::Itself) => quote!(::wengert::nn),
        Ok(FoundCrate::Name(name)) => {
            let id = to_ident(&name);
            quote!(::#id::nn)
        }
        Err(_) => quote!(::wengert::nn),
    }
}

/// Derives `Module` for a struct with named fields (see the crate docs).
///
/// ```
/// use wengert_nn::prelude::*;
///
/// #[derive(Module)] // a model over f32 (`struct Net<T: Float>` for any element type)
/// struct Net {
///     encoder: Linear,      // "encoder.weight", "encoder.bias"
///     blocks: Vec<Linear>,  // "blocks.0.weight", ...
///     #[module(skip)]
///     label: String,
/// }
/// impl Net {
///     fn forward<'t>(&self, x: Var<'t>) -> Var<'t> {
///         self.blocks.iter().fold(self.encoder.forward(x), |h, b| b.forward(h).tanh())
///     }
/// }
/// let net = Net { encoder: Linear::new(3, 4), blocks: vec![Linear::new(4, 4), Linear::new(4, 2)], label: "demo".into() };
/// let names: Vec<String> = net.named_params().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["encoder.weight", "encoder.bias", "blocks.0.weight", "blocks.0.bias", "blocks.1.weight", "blocks.1.bias"]);
/// let tape = Tape::new();
/// assert_eq!(Module::forward(&net, tape.constant(Tensor::ones([5, 3]))).shape().dims(), &[5, 2]);
/// ```
#[proc_macro_derive(Module, attributes(module))]
pub fn derive_module(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(input) {
        Ok(t) => t.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn expand(input: DeriveInput) -> syn::Result<TokenStream2> {
    let nn = nn_path();
    let name = &input.ident;
    let mut float: Option<Type> = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("module")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("float") {
                float = Some(meta.value()?.parse()?);
                Ok(())
            } else {
                Err(meta.error("expected `float = f32` or `float = f64` on the struct"))
            }
        })?;
    }
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new(input.span(), "#[derive(Module)] needs a struct with named fields"));
    };
    let Fields::Named(fields) = &data.fields else {
        return Err(syn::Error::new(input.span(), "#[derive(Module)] needs a struct with named fields"));
    };

    let mut plans = Vec::new();
    for field in &fields.named {
        let ident = field.ident.clone().expect("named");
        let (mut skip, mut buffer, mut rename) = (false, false, None::<String>);
        for attr in field.attrs.iter().filter(|a| a.path().is_ident("module")) {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("skip") {
                    skip = true;
                } else if meta.path.is_ident("buffer") {
                    buffer = true;
                } else if meta.path.is_ident("rename") {
                    rename = Some(meta.value()?.parse::<LitStr>()?.value());
                } else {
                    return Err(meta.error("expected `skip`, `buffer` or `rename = \"...\"`"));
                }
                Ok(())
            })?;
        }
        if skip {
            continue;
        }
        let kind = if buffer {
            match last_segment(&field.ty) {
                Some((id, inner)) if id == "Tensor" && is_named(inner, "i64") => Kind::IntBuffer,
                Some((id, _)) if id == "Tensor" => Kind::FloatBuffer,
                _ => return Err(syn::Error::new(field.ty.span(), "#[module(buffer)] needs a `Tensor<T>` or `Tensor<i64>` field")),
            }
        } else {
            match last_segment(&field.ty) {
                Some((id, _)) if id == "Param" => Kind::Param,
                Some((id, inner)) if id == "Option" && is_named(inner, "Param") => Kind::OptionalParam,
                Some((id, _)) if id == "Option" => Kind::Optional,
                Some((id, _)) if id == "Vec" => Kind::List,
                _ => Kind::Module,
            }
        };
        let field_name = rename.unwrap_or_else(|| ident.to_string());
        plans.push(FieldPlan { ident, name: field_name, kind, span: field.ty.span() });
    }

    // the element type: the first type parameter, else the attribute, else f32
    let first_type_param = input.generics.type_params().next().map(|p| p.ident.clone());
    let t: TokenStream2 = match (&float, &first_type_param) {
        (Some(f), _) => quote!(#f),
        (None, Some(p)) => quote!(#p),
        (None, None) => quote!(f32),
    };
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();

    let mut params = Vec::new();
    let mut params_mut = Vec::new();
    let mut buffers = Vec::new();
    let mut buffers_mut = Vec::new();
    let mut training = Vec::new();
    for FieldPlan { ident, name, kind, span } in &plans {
        let module = quote_spanned!(*span=> #nn::Module<#t>);
        match kind {
            Kind::Module => {
                params.push(quote_spanned!(*span=> <_ as #module>::visit_params(&self.#ident, &format!("{prefix}{}.", #name), f);));
                params_mut.push(quote_spanned!(*span=> <_ as #module>::visit_params_mut(&mut self.#ident, &format!("{prefix}{}.", #name), f);));
                buffers.push(quote_spanned!(*span=> <_ as #module>::visit_buffers(&self.#ident, &format!("{prefix}{}.", #name), f);));
                buffers_mut.push(quote_spanned!(*span=> <_ as #module>::visit_buffers_mut(&mut self.#ident, &format!("{prefix}{}.", #name), f);));
                training.push(quote_spanned!(*span=> <_ as #module>::set_training(&mut self.#ident, training);));
            }
            Kind::Optional | Kind::List => {
                let each = |call: TokenStream2, by_mut: bool| {
                    let iter = if by_mut { quote!(iter_mut) } else { quote!(iter) };
                    let prefix = match kind {
                        Kind::List => quote!(format!("{prefix}{}.{i}.", #name)),
                        _ => quote!(format!("{prefix}{}.", #name)),
                    };
                    quote_spanned!(*span=> for (i, m) in self.#ident.#iter().enumerate() { let _ = i; let p = #prefix; #call })
                };
                params.push(each(quote_spanned!(*span=> <_ as #module>::visit_params(m, &p, f);), false));
                params_mut.push(each(quote_spanned!(*span=> <_ as #module>::visit_params_mut(m, &p, f);), true));
                buffers.push(each(quote_spanned!(*span=> <_ as #module>::visit_buffers(m, &p, f);), false));
                buffers_mut.push(each(quote_spanned!(*span=> <_ as #module>::visit_buffers_mut(m, &p, f);), true));
                training.push(quote_spanned!(*span=> for m in self.#ident.iter_mut() { <_ as #module>::set_training(m, training); }));
            }
            Kind::Param => {
                params.push(quote_spanned!(*span=> f(format!("{prefix}{}", #name), &self.#ident);));
                params_mut.push(quote_spanned!(*span=> f(format!("{prefix}{}", #name), &mut self.#ident);));
            }
            Kind::OptionalParam => {
                params.push(quote_spanned!(*span=> if let Some(p) = &self.#ident { f(format!("{prefix}{}", #name), p); }));
                params_mut.push(quote_spanned!(*span=> if let Some(p) = &mut self.#ident { f(format!("{prefix}{}", #name), p); }));
            }
            Kind::FloatBuffer | Kind::IntBuffer => {
                let variant = if matches!(kind, Kind::IntBuffer) { quote!(Int) } else { quote!(Float) };
                buffers.push(quote_spanned!(*span=> f(format!("{prefix}{}", #name), #nn::Buffer::#variant(self.#ident.clone()));));
                buffers_mut.push(quote_spanned!(*span=> f(format!("{prefix}{}", #name), #nn::BufferMut::#variant(&mut self.#ident));));
            }
        }
    }

    Ok(quote! {
        impl #impl_generics #nn::Module<#t> for #name #ty_generics #where_clause {
            /// Calls the struct's own (inherent) `forward`.
            #[track_caller]
            fn forward<'t>(&self, x: #nn::wengert_core::Var<'t, #t>) -> #nn::wengert_core::Var<'t, #t> {
                // An inherent `forward` outranks every trait method. Without one, this call
                // would find `Module::forward` itself and recurse forever; the trait below
                // makes it ambiguous instead, a compile error that names what is missing.
                #[allow(non_camel_case_types, dead_code)]
                trait derive_Module_needs_an_inherent_fn_forward {
                    fn forward(&self, _: ()) {}
                }
                impl<U: ?Sized> derive_Module_needs_an_inherent_fn_forward for U {}
                self.forward(x)
            }
            #[allow(unused_variables)]
            fn visit_params<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(String, &'a #nn::wengert_core::Param<#t>)) {
                #(#params)*
            }
            #[allow(unused_variables)]
            fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(String, &'a mut #nn::wengert_core::Param<#t>)) {
                #(#params_mut)*
            }
            #[allow(unused_variables)]
            fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(String, #nn::Buffer<#t>)) {
                #(#buffers)*
            }
            #[allow(unused_variables)]
            fn visit_buffers_mut(&mut self, prefix: &str, f: &mut dyn FnMut(String, #nn::BufferMut<'_, #t>)) {
                #(#buffers_mut)*
            }
            #[allow(unused_variables)]
            fn set_training(&mut self, training: bool) {
                #(#training)*
            }
        }
    })
}
