/**
 * Sign-in page (/signin?next=<path>): sign in with an email and a password, or create an account
 * and confirm the address with the code Cognito emails (the local runtime takes any code: it has
 * no mail server). Then on to `next` (default: the upload page).
 */
import { AuthError, confirmSignUp, hasSignIn, signIn, signUp } from './auth.js';
import { h } from './dom.js';

// The user pool's rule (spaceport.auth.pool: at least 10 characters, of any kind).
const MIN_PASSWORD_LENGTH = 10;

export function mount(root, _params, { navigate }) {
  const next = safeNext(new URLSearchParams(location.search).get('next'));
  const email = h('input', { type: 'email', id: 'auth-email', required: true, autocomplete: 'username', placeholder: 'you@example.com' });
  const password = h('input', { type: 'password', id: 'auth-password', required: true, autocomplete: 'current-password', minlength: MIN_PASSWORD_LENGTH });
  const code = h('input', { type: 'text', id: 'confirm-code', inputmode: 'numeric', autocomplete: 'one-time-code', placeholder: '123456' });
  const message = h('p', { class: 'message', id: 'auth-message', role: 'status' });
  const signInButton = h('button', { type: 'submit', id: 'signin' }, 'Sign in');
  const signUpButton = h('button', { type: 'button', id: 'signup', class: 'secondary' }, 'Create an account');
  const confirmBox = h('div', { id: 'confirm-box', hidden: true },
    h('label', { for: 'confirm-code' }, 'The code we emailed you'), code,
    h('button', { type: 'button', id: 'confirm' }, 'Confirm my address'));
  const form = h('form', { class: 'card auth-form', novalidate: true },
    h('h1', {}, 'Sign in to Spaceport'),
    h('label', { for: 'auth-email' }, 'Email'), email,
    h('label', { for: 'auth-password' }, `Password (at least ${MIN_PASSWORD_LENGTH} characters)`), password,
    h('p', { class: 'actions' }, signInButton, ' ', signUpButton), confirmBox, message);

  const say = (text, isError = false) => {
    message.textContent = text;
    message.className = `message${isError ? ' error' : ''}`;
  };
  const busy = async (work) => {
    for (const button of form.querySelectorAll('button')) button.disabled = true;
    try {
      await work();
    } catch (error) {
      say(error instanceof AuthError ? error.message : `Something went wrong: ${error.message}`, true);
    } finally {
      for (const button of form.querySelectorAll('button')) button.disabled = false;
    }
  };
  const filled = () => {
    if (!email.checkValidity() || !email.value) throw new AuthError('Enter your email address.');
    if (password.value.length < MIN_PASSWORD_LENGTH) throw new AuthError(`Enter a password of at least ${MIN_PASSWORD_LENGTH} characters.`);
  };

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    busy(async () => {
      filled();
      await signIn(email.value.trim(), password.value);
      navigate(next);
    });
  });
  signUpButton.addEventListener('click', () => busy(async () => {
    filled();
    const { confirmed } = await signUp(email.value.trim(), password.value);
    if (confirmed) {
      await signIn(email.value.trim(), password.value);
      navigate(next);
      return;
    }
    confirmBox.hidden = false;
    say(`We emailed a code to ${email.value.trim()}: enter it to confirm your address.`);
    code.focus();
  }));
  code.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') {
      event.preventDefault();
      confirmBox.querySelector('#confirm').click();
    }
  });
  confirmBox.querySelector('#confirm').addEventListener('click', () => busy(async () => {
    if (!code.value.trim()) throw new AuthError('Enter the code from the email.');
    await confirmSignUp(email.value.trim(), code.value.trim());
    await signIn(email.value.trim(), password.value);
    navigate(next);
  }));

  root.append(form);
  hasSignIn().then((available) => {
    if (!available) say('This site has no sign-in configured.', true);
  });
}

/** Only a path of this site: a link cannot send someone elsewhere after they signed in. */
function safeNext(value) {
  return value && value.startsWith('/') && !value.startsWith('//') ? value : '/';
}
